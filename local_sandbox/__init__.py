"""Local mode: the server on one machine, images on the filesystem, history and jobs in SQLite.

    cli.py            the `gpt-image-mcp` entry point (stdio or HTTP on loopback)
    local_server.py   composition root of the local mode
    fs_store.py       images in the sandboxed output/input folders
    sqlite_*.py       history and job stores in one SQLite file
    job_runner.py     the in-process job pool, with leases and recovery
    standins/         development stand-ins (OpenAI emulator, AWS emulation); never deployed

Imports run one way: local_sandbox -> gpt_image_mcp (core, server). `standins` may import the entry points it
drives; nothing outside `standins` and `cli --emulator` imports `standins`.
"""
