"""`gpt-image-mcp batch FILE`: many image requests from a file, run locally or on a remote deployment.

One job per module; the imports run command -> (local | remote), display, summary -> run -> plans, estimate ->
batchfile:

* `batchfile` reads and checks the file (the tools' argument models) and gives each request its identity;
* `plans` checks every request with the tools' planning code before anything is sent;
* `estimate` prices a request from the catalog before anything is sent;
* `run` takes every request to a finished job, a few at a time, resumable, stoppable;
* `local` runs the jobs in the local server's job store and pool; `remote` through a deployment's job tools;
* `display` shows the bar, the counted lines and the tables; `summary` writes the JSON summary;
* `command` is the command line.

Nothing here is imported by the server: `gpt-image-mcp` loads this package only for its `batch` subcommand.
"""
