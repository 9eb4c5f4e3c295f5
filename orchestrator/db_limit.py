"""The database limit of a stepped run: the first step that did not hold, and why, in words.

One judge serves twice. The pgbench step runner asks it after every step whether to go on
(:mod:`orchestrator.engines.pgbench.steps`), and the result's :class:`DatabaseLimit` is
drawn from the same verdicts, the evidence completed with the server's own limits
(``max_connections`` and its reserved slots, or PgBouncer's pool size) once the pool
monitor's figures are attached (:mod:`orchestrator.execute`).

A step does not hold when, in this order: the server refused a connection; more of its
transactions failed than ``stop_when_error_rate``; a client waited for a server connection
longer than ``stop_when_pool_wait``; its p95 was over ``stop_when_p95``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.db_models import DatabaseLimit, DatabaseStep, FailReason
from orchestrator.models import PoolMetrics
from orchestrator.scenarios import Scenario


@dataclass(frozen=True)
class StopRules:
    error_rate: float | None = None  # percent
    p95: float | None = None  # ms
    pool_wait: float | None = None  # s

    @classmethod
    def of(cls, scenario: Scenario) -> StopRules:
        return cls(
            scenario.stop_when_error_rate, scenario.stop_when_p95, scenario.stop_when_pool_wait
        )

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> StopRules:
        data = data or {}
        return cls(data.get("errorRate"), data.get("p95"), data.get("poolWait"))

    def to_json(self) -> dict[str, float | None]:
        return {"errorRate": self.error_rate, "p95": self.p95, "poolWait": self.pool_wait}

    @property
    def active(self) -> bool:
        """Any rule set: the run is looking for a limit and stops at the first failing step."""
        return any(v is not None for v in (self.error_rate, self.p95, self.pool_wait))


def fmt_seconds(value: float) -> str:
    return f"{value:.3g} s" if value >= 1 else f"{value * 1000:.3g} ms"


def fmt_ms(value: float) -> str:
    return f"{value:.3g} ms" if value < 1000 else f"{value / 1000:.3g} s"


def _broken_rule(step: DatabaseStep, rules: StopRules) -> tuple[FailReason, str] | None:
    at = f"at {step.clients} clients"
    if step.refused:
        return "connections_refused", f"connections refused {at} ({step.refused})"
    rate = step.error_rate
    if rules.error_rate is not None and rate is not None and rate > rules.error_rate:
        return "errors", f"{rate:.3g}% of transactions failed {at} (limit {rules.error_rate:g}%)"
    wait = step.max_wait
    if rules.pool_wait is not None and wait is not None and wait > rules.pool_wait:
        return "pool_wait", (
            f"clients waited up to {fmt_seconds(wait)} for a server connection {at} "
            f"(limit {fmt_seconds(rules.pool_wait)})"
        )
    if rules.p95 is not None and step.p95 is not None and step.p95 > rules.p95:
        return "p95", f"p95 {fmt_ms(step.p95)} {at}, over {fmt_ms(rules.p95)}"
    return None


def judge_step(step: DatabaseStep, rules: StopRules) -> DatabaseStep:
    """The step with ``failedBy`` and ``detail`` set to the first rule it broke (or None)."""
    broken = _broken_rule(step, rules)
    reason, detail = broken if broken else (None, None)
    return step.model_copy(update={"failed_by": reason, "detail": detail})


def _server_note(pool: PoolMetrics | None, step: DatabaseStep | None) -> str:
    """The limits the server or pooler set, as the monitor read them."""
    if pool is None:
        return ""
    if pool.source == "postgres":
        if pool.max_connections is None:
            return ""
        # Connections already there before the load took slots too (a pooler's, say).
        others = pool.series[0].total_connections if pool.series else None
        held = f", {others} held by other clients before the load" if others else ""
        # A superuser may use the reserved slots too (libpq's role, the monitor's as well).
        open_to = ", open to this superuser role" if pool.superuser else ""
        return (
            f"; max_connections={pool.max_connections} with {pool.reserved_connections} "
            f"reserved{open_to} ({pool.monitor_connections} used by the monitor{held})"
        )
    note = f"; pool_size={pool.pool_size} ({pool.pool_mode} mode)"
    if step is not None and step.failed_by == "connections_refused":
        note += f", max_client_conn={pool.max_client_conn}"
    elif step is not None and step.failed_by != "pool_wait" and step.waiting_clients:
        wait = f", longest wait {fmt_seconds(step.max_wait)}" if step.max_wait else ""
        note += f", up to {step.waiting_clients} clients waiting for a server{wait}"
    return note


def _component(pool: PoolMetrics | None, step: DatabaseStep | None) -> str | None:
    if step is None or step.failed_by is None:
        return None
    if pool is not None and pool.source == "pgbouncer":
        if step.failed_by == "connections_refused":
            return f"PgBouncer client connections (max_client_conn={pool.max_client_conn})"
        if step.failed_by == "pool_wait" or step.waiting_clients:
            return f"PgBouncer pool (pool_size={pool.pool_size}, {pool.pool_mode} mode)"
    if step.failed_by == "connections_refused":
        if pool is not None and pool.max_connections is not None:
            return (
                f"PostgreSQL connection slots (max_connections={pool.max_connections}, "
                f"{pool.reserved_connections} reserved)"
            )
        return "database connection slots"
    return "database query latency" if step.failed_by == "p95" else "database errors"


def find_limit(
    steps: Sequence[DatabaseStep],
    rules: StopRules,
    pool: PoolMetrics | None = None,
    stopped_early: bool = False,
) -> DatabaseLimit:
    """The highest client count that held before the first failing step, and the evidence."""
    judged = [judge_step(step, rules) for step in steps if step.clients > 0]
    first = next((i for i, s in enumerate(judged) if s.failed_by is not None), None)
    before = judged if first is None else judged[:first]
    failing = None if first is None else judged[first]
    tested = max((s.clients for s in judged), default=0)
    found = failing.detail if failing is not None else f"none found up to {tested} clients"
    return DatabaseLimit(
        max_database_connections=max((s.clients for s in before), default=None),
        first_failing=failing.clients if failing is not None else None,
        reason=failing.failed_by if failing is not None else None,
        evidence=f"{found}{_server_note(pool, failing)}",
        component=_component(pool, failing),
        tested_up_to=tested,
        stopped_early=stopped_early,
        error_rate_limit=rules.error_rate,
        p95_limit=rules.p95,
        pool_wait_limit=rules.pool_wait,
        steps=judged,
    )


def with_pool(limit: DatabaseLimit, pool: PoolMetrics | None) -> DatabaseLimit:
    """``limit`` drawn again with the pool monitor's figures in its evidence."""
    rules = StopRules(limit.error_rate_limit, limit.p95_limit, limit.pool_wait_limit)
    return find_limit(limit.steps, rules, pool, limit.stopped_early)
