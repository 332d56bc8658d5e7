"""gpt-image-mcp: an MCP server for OpenAI's GPT image models.

Layout (imports run downwards only):
    server/  -> MCP tool handlers, thin; call core.service
    core/    -> plain logic: model catalog, pricing, validation, sandbox rules, metadata,
                upstream client, storage interfaces. Never imports an adapter.
    aws/     -> S3 / DynamoDB / SQS adapters of the core's storage interfaces
Local adapters (filesystem, SQLite, stdio entry, emulator) live in the top-level `local_sandbox` package.
"""

__version__ = "0.1.0"
