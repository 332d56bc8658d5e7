"""gpt-image-mcp: an MCP server for OpenAI's GPT image models.

Layout (imports run downwards only):
    entry/   -> the Lambda handlers (MCP over API Gateway, the SQS job worker) and their composition
    server/  -> MCP tool handlers, thin; call core.service and core.jobs
    aws/     -> S3 / DynamoDB / SQS / Secrets Manager adapters of the core's storage interfaces; auth
    core/    -> plain logic: model catalog, pricing, validation, sandbox rules, metadata, upstream client,
                jobs, storage interfaces. Never imports an adapter.
The local mode (filesystem, SQLite, stdio entry) and the development stand-ins live in the top-level
`local_sandbox` package.
"""

__version__ = "0.1.0"
