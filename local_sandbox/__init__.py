"""Local mode: filesystem + SQLite adapters, stdio/HTTP entry, and offline stand-ins.

The stand-ins are the OpenAI images emulator and AWS emulation.
"""
