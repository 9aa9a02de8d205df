"""Compliance: the policy as code (``policy``), the issues and reports checks produce
(``issue``), the record the rules read (``events``), the incremental rule engine (``engine``) and
the period analysis (``monitor``). Pure domain code: storage, tasks and the CLI build on these.
"""

from tradewatch.domain.compliance.engine import (
    ComplianceEngine,
    ComplianceResult,
    ComplianceState,
    ComplianceStateError,
    EngineConfig,
)
from tradewatch.domain.compliance.events import ComplianceEvent, canonical_key, from_model, from_models
from tradewatch.domain.compliance.issue import (
    ISSUE_CODES,
    SEVERITIES,
    ComplianceIssue,
    ComplianceReport,
    IssueCode,
)
from tradewatch.domain.compliance.monitor import ComplianceMonitor, EventList, EventSource
from tradewatch.domain.compliance.policy import (
    DEFAULT_POLICY_RESOURCE,
    LLM_DECISIONS,
    CompliancePolicy,
    NoPolicyInForce,
    PolicyError,
    PolicyHistory,
    default_policy,
)

__all__ = [
    "ComplianceEngine",
    "ComplianceEvent",
    "ComplianceMonitor",
    "ComplianceResult",
    "ComplianceState",
    "ComplianceStateError",
    "EngineConfig",
    "EventList",
    "EventSource",
    "canonical_key",
    "from_model",
    "from_models",
    "DEFAULT_POLICY_RESOURCE",
    "ISSUE_CODES",
    "LLM_DECISIONS",
    "SEVERITIES",
    "ComplianceIssue",
    "CompliancePolicy",
    "ComplianceReport",
    "IssueCode",
    "NoPolicyInForce",
    "PolicyError",
    "PolicyHistory",
    "default_policy",
]
