# Ported from the Flovyn Python SDK (github.com/flovyn/sdk-python, MIT licence), examples/hello_world.py at
# commit 6bbaca9: the definitions are unchanged; only the import line differs, and main()
# (which builds a FlovynClient for a Flovyn server) is left out.
# Kept as Flovyn wrote it: neither linted nor reformatted here.
# ruff: noqa
# fmt: off
"""Hello World example - Simple workflow and task demonstration."""

import asyncio

from pydantic import BaseModel

from flovyn_nb import TaskContext, WorkflowContext, task, workflow


# Define input/output models using Pydantic
class GreetInput(BaseModel):
    name: str


class GreetOutput(BaseModel):
    greeting: str


class HelloInput(BaseModel):
    name: str


class HelloOutput(BaseModel):
    message: str


# Define a simple task
@task(name="greet")
class GreetTask:
    """A task that generates a greeting."""

    async def run(self, ctx: TaskContext, input: GreetInput) -> GreetOutput:
        # Report progress
        await ctx.report_progress(0.5, "Generating greeting")

        greeting = f"Hello, {input.name}!"

        await ctx.report_progress(1.0, "Done")

        return GreetOutput(greeting=greeting)


# Define a simple workflow
@workflow(name="hello-world")
class HelloWorldWorkflow:
    """A workflow that greets someone."""

    async def run(self, ctx: WorkflowContext, input: HelloInput) -> HelloOutput:
        # Use deterministic operations from context
        timestamp = ctx.current_time().isoformat()
        ctx.logger.info(f"Starting workflow at {timestamp}")

        # Execute a task
        result = await ctx.schedule(
            GreetTask,
            GreetInput(name=input.name),
        )

        return HelloOutput(message=f"{result.greeting} (processed at {timestamp})")
