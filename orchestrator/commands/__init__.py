"""The commands, each thin: build its plan, hand it to :mod:`orchestrator.workflow`.

``run`` (one load test: a suite of one), ``suite`` (a named suite), ``importing`` (results
from files made elsewhere) and ``doctor`` (which tools work). Each returns the exit code.
"""
