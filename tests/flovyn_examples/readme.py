# Ported from the README of the Flovyn Python SDK (github.com/flovyn/sdk-python, MIT
# licence) at commit 6bbaca9: the "Define a Task" and "Define a Workflow" blocks, unchanged
# apart from the import lines.
# Kept as Flovyn wrote it: neither linted nor reformatted here.
# ruff: noqa
# fmt: off
from pydantic import BaseModel
from flovyn_nb import task, TaskContext

class GreetInput(BaseModel):
    name: str

class GreetOutput(BaseModel):
    greeting: str

@task(name="greet")
class GreetTask:
    async def run(self, ctx: TaskContext, input: GreetInput) -> GreetOutput:
        return GreetOutput(greeting=f"Hello, {input.name}!")

from flovyn_nb import workflow, WorkflowContext

class HelloInput(BaseModel):
    name: str

class HelloOutput(BaseModel):
    message: str

@workflow(name="hello-world")
class HelloWorldWorkflow:
    async def run(self, ctx: WorkflowContext, input: HelloInput) -> HelloOutput:
        # Use deterministic time from context
        timestamp = ctx.current_time().isoformat()

        # Execute a task
        result = await ctx.schedule(
            GreetTask,
            GreetInput(name=input.name),
        )

        return HelloOutput(message=f"{result.greeting} ({timestamp})")
