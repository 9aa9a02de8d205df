"""Compliance: the policy as code (``policy``) and the issues and reports checks produce (``issue``).

Pure domain code: the rule engine, tasks and CLI build on these.
"""

from tradewatch.domain.compliance.issue import (
    ISSUE_CODES,
    SEVERITIES,
    ComplianceIssue,
    ComplianceReport,
    IssueCode,
)
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
