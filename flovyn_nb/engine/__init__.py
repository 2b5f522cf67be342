"""The machinery that executes workflows: runner and replay, deadlines, writer, ownership."""
