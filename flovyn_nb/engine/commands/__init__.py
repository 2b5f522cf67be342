"""The families of commands a run executes for its context (mixins over ``RunBase``)."""
