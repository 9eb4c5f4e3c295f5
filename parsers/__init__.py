"""What every engine's parser shares: reading a tool's files and building the one result.

One tool's own parsing lives with the rest of that tool in ``orchestrator/engines/<tool>/``;
this package knows no tool by name and imports no engine.
"""
