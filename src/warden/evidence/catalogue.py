"""The control catalogue (``reference/frameworks.md`` §9) and the frameworks it maps to.

IDs and titles are facts from the frameworks, kept as constants with their sources; the mapping
of each control is the catalogue's. ``PARTIAL`` states, honestly, which risks a control plane
only partly addresses (frameworks.md §1.4 and the end of §9).
"""

from __future__ import annotations

from dataclasses import dataclass, field

OWASP_ASI_SOURCE = (
    "OWASP Top 10 for Agentic Applications 2026 (OWASP GenAI Security Project, 9 Dec 2025), "
    "https://genai.owasp.org/resource/owasp-top-10-for-agentic-applications-for-2026/"
)
OWASP_ASI = {
    "ASI01": "Agent Goal Hijack",
    "ASI02": "Tool Misuse and Exploitation",
    "ASI03": "Identity and Privilege Abuse",
    "ASI04": "Agentic Supply Chain Vulnerabilities",
    "ASI05": "Unexpected Code Execution (RCE)",
    "ASI06": "Memory & Context Poisoning",
    "ASI07": "Insecure Inter-Agent Communication",
    "ASI08": "Cascading Failures",
    "ASI09": "Human-Agent Trust Exploitation",
    "ASI10": "Rogue Agents",
}
MAESTRO_SOURCE = "CSA MAESTRO (K. Huang, Cloud Security Alliance blog, 6 Feb 2025)"
MAESTRO = {
    "L1": "Foundation Models",
    "L2": "Data Operations",
    "L3": "Agent Frameworks",
    "L4": "Deployment and Infrastructure",
    "L5": "Evaluation and Observability",
    "L6": "Security and Compliance",
    "L7": "Agent Ecosystem",
}
AI_RMF_SOURCE = "NIST AI 100-1, AI Risk Management Framework 1.0 (Jan 2023)"
CSF_SOURCE = "NIST CSWP 29, Cybersecurity Framework 2.0 (26 Feb 2024)"
SP800_53_SOURCE = "NIST SP 800-53 Rev. 5"

# Risks the control plane only partly addresses: it limits impact and records evidence, but
# prevention sits in the agent runtime or the content pipeline.
PARTIAL = {
    "ASI01": "input sanitisation and goal integrity sit in the agent runtime; Warden limits "
    "impact (least privilege, approvals, per-action policy) and records evidence",
    "ASI05": "sandboxing generated code belongs to the agent runtime; Warden can only gate and "
    "record the tools that run code",
    "ASI06": "memory and RAG hygiene belong to the agent runtime and data pipeline; Warden "
    "limits what a poisoned agent can do",
    "ASI04": "Warden does not verify tool or model provenance (no pinned tool registry yet); "
    "it can revoke an agent's or tool's access everywhere at once",
    "ASI07": "Warden authenticates agents to itself and binds credentials to tasks; "
    "agent-to-agent message signing is outside it",
}
OUT_OF_SCOPE = (
    "NIST AI RMF MEASURE 2.2, 2.10 to 2.12 (human-subject testing, privacy, fairness, environment) "
    "and MAESTRO layers L1 and L2 (models, data pipelines) are outside a control plane."
)


@dataclass(frozen=True)
class ControlSpec:
    id: str
    title: str
    assertion: str
    asi: tuple[str, ...] = ()
    maestro: tuple[str, ...] = ()
    ai_rmf: tuple[str, ...] = ()
    csf: tuple[str, ...] = ()
    sp800_53: tuple[str, ...] = ()
    nhi: tuple[str, ...] = ()
    coverage: str = "full"  # full | partial: Warden's records prove only part of the assertion
    coverage_note: str = ""
    extra: dict[str, str] = field(default_factory=dict)


CONTROLS: tuple[ControlSpec, ...] = (
    ControlSpec(
        "CP-ID-01",
        "Registered identity only",
        "Every decision comes from an agent registered and active at request time; unknown, "
        "suspended or retired principals are denied.",
        asi=("ASI03", "ASI07", "ASI10"),
        maestro=("L7 Agent Identity Attack", "L7 Agent Impersonation"),
        ai_rmf=("GOVERN 1.6",),
        csf=("PR.AA-01", "PR.AA-03", "ID.AM-02"),
        sp800_53=("AC-2", "IA-4", "IA-9", "AC-3"),
        nhi=("NHI4",),
    ),
    ControlSpec(
        "CP-ID-02",
        "One identity per agent per environment",
        "No credential is used by an agent other than the one it was issued to.",
        asi=("ASI03",),
        csf=("PR.AA-02", "PR.IR-01"),
        sp800_53=("AC-2(9)", "IA-4"),
        nhi=("NHI8", "NHI9"),
        coverage="partial",
        coverage_note="environments are not recorded; credential-to-agent binding is checked",
    ),
    ControlSpec(
        "CP-OWN-01",
        "Active human owner",
        "Every active agent has an active human owner; an agent that loses its last owner is "
        "suspended within the grace period.",
        asi=("ASI10", "ASI09"),
        ai_rmf=("GOVERN 2.1", "GOVERN 2.3", "GOVERN 3.2"),
        csf=("GV.RR-02", "ID.AM-08"),
        sp800_53=("AC-2", "AC-2(3)"),
        nhi=("NHI1", "NHI10"),
    ),
    ControlSpec(
        "CP-LIFE-01",
        "Registration completeness",
        "Every agent record has purpose, owner, risk tier and allowed tool set.",
        asi=("ASI04", "ASI10"),
        maestro=("L7 Inaccurate Agent Capability Description",),
        ai_rmf=("GOVERN 1.6", "MAP 1.1", "MAP 3.3"),
        csf=("ID.AM-02", "ID.AM-05"),
        sp800_53=("CM-8", "CM-8(4)"),
        coverage="partial",
        coverage_note="environment, model/version and charter hash are not in the registry yet",
    ),
    ControlSpec(
        "CP-LIFE-02",
        "Dormancy and expiry",
        "Agents unused for the configured period or past their end date are flagged and then "
        "suspended; retired agents get no credentials.",
        asi=("ASI10",),
        ai_rmf=("GOVERN 1.7",),
        csf=("ID.AM-08",),
        sp800_53=("AC-2(3)", "AC-2(2)"),
        nhi=("NHI1",),
    ),
    ControlSpec(
        "CP-LIFE-03",
        "Periodic recertification",
        "Each agent's entitlements are re-attested by an owner at least every 90 days; if not, "
        "they are reduced or the agent suspended.",
        asi=("ASI03",),
        ai_rmf=("GOVERN 1.5",),
        csf=("PR.AA-05", "GV.OV-03"),
        sp800_53=("AC-2", "AC-6(7)"),
        nhi=("NHI5",),
    ),
    ControlSpec(
        "CP-CRED-01",
        "Credential TTL cap",
        "Every issued credential expires, within 15 min (60 min for the low risk tier).",
        asi=("ASI02", "ASI03", "ASI08", "ASI10"),
        csf=("PR.AA-01",),
        sp800_53=("IA-5", "IA-5(13)", "AC-12", "AC-2(2)"),
        nhi=("NHI7",),
    ),
    ControlSpec(
        "CP-CRED-02",
        "Credentials bound to audience and task",
        "Every credential names one agent, an audience and a task.",
        asi=("ASI03", "ASI10", "ASI07"),
        csf=("PR.AA-04",),
        sp800_53=("IA-5(10)", "SC-23", "AU-10(1)"),
        nhi=("NHI9",),
    ),
    ControlSpec(
        "CP-CRED-03",
        "No secret material exposed",
        "Audit records carry credential ids or hashes only, never raw tokens or keys.",
        asi=("ASI03", "ASI10"),
        maestro=("L5 Data Leakage through Observability",),
        csf=("PR.DS-01",),
        sp800_53=("IA-5(6)", "IA-5(7)"),
        nhi=("NHI2", "NHI7"),
    ),
    ControlSpec(
        "CP-CRED-04",
        "Revocation propagation",
        "When an agent is suspended or retired, every outstanding credential is revoked within "
        "60 s and no allow is made on a revoked credential.",
        asi=("ASI10", "ASI04"),
        ai_rmf=("MANAGE 2.4",),
        csf=("RS.MI-01",),
        sp800_53=("AC-3(8)", "AC-2(3)", "IR-4"),
        nhi=("NHI1",),
    ),
    ControlSpec(
        "CP-AUTHZ-01",
        "Complete mediation, default deny",
        "Every allowed action has a decision naming the policies that permitted it; nothing is "
        "allowed by default, on error or in monitor mode.",
        asi=("ASI02", "ASI03", "ASI08"),
        maestro=("L3 Framework Evasion", "L7 Agent Tool Misuse"),
        csf=("PR.AA-05",),
        sp800_53=("AC-3", "AC-24", "AC-25", "IA-11"),
        coverage="partial",
        coverage_note="PEP execution receipts are not recorded, so actions executed without "
        "asking the PDP cannot be seen from Warden's log",
    ),
    ControlSpec(
        "CP-AUTHZ-02",
        "Delegation attenuation",
        "A delegate's scope is a subset of its delegator's and chains are at most 3 deep.",
        asi=("ASI03", "ASI07"),
        maestro=("Cross-layer Privilege Escalation",),
        csf=("PR.AA-05",),
        sp800_53=("AC-6", "AC-2(6)"),
        nhi=("NHI5",),
    ),
    ControlSpec(
        "CP-AUTHZ-03",
        "Versioned, approved policy",
        "Every decision records the policy-set revision, and every revision was loaded (and "
        "recorded) before it decided anything.",
        asi=("ASI01", "ASI04"),
        ai_rmf=("GOVERN 1.4",),
        csf=("GV.PO-01", "GV.PO-02", "ID.RA-07", "PR.PS-01"),
        sp800_53=("CM-3", "AC-5"),
        coverage="partial",
        coverage_note="approval of policy changes by someone other than the author is not "
        "recorded by Warden",
    ),
    ControlSpec(
        "CP-A2A-01",
        "Authenticated inter-agent calls",
        "Every agent-to-agent request carries a verified, fresh, signed assertion.",
        asi=("ASI07", "ASI03"),
        maestro=("L7 Agent Impersonation", "L7 Malicious Agent Discovery"),
        csf=("PR.AA-03", "PR.AA-04", "PR.DS-02"),
        sp800_53=("IA-9", "SC-8", "SC-23"),
    ),
    ControlSpec(
        "CP-TP-01",
        "Third-party tool allowlist",
        "Agents reach only registered tools and servers pinned by version or hash.",
        asi=("ASI04", "ASI02", "ASI07"),
        maestro=("L3 Supply Chain", "L7 Compromised Agent Registry", "L7 Integration Risks"),
        ai_rmf=("GOVERN 6.1", "MAP 4.1", "MANAGE 3.1"),
        csf=("GV.SC-04", "GV.SC-07", "ID.AM-04", "ID.RA-09", "DE.CM-06"),
        sp800_53=("CM-14", "CM-8", "SA-9"),
        nhi=("NHI3",),
    ),
    ControlSpec(
        "CP-APPR-01",
        "Approval for high-risk actions",
        "Every allowed high-risk action links to an approval granted before it, for that exact "
        "action, unexpired and unused; timed-out approvals become denies.",
        asi=("ASI01", "ASI02", "ASI03", "ASI05", "ASI09"),
        ai_rmf=("GOVERN 3.2", "MAP 3.5", "MANAGE 2.4"),
        csf=("PR.AA-05", "RS.MA-04"),
        sp800_53=("AC-3(2)", "AC-6(9)"),
    ),
    ControlSpec(
        "CP-APPR-02",
        "Independent, strongly authenticated approvers",
        "Approvers are humans outside the requesting agent's chain, freshly authenticated.",
        asi=("ASI09",),
        csf=("PR.AA-03", "PR.AA-05"),
        sp800_53=("AC-5", "IA-2(1)", "IA-11", "AU-10(4)"),
    ),
    ControlSpec(
        "CP-KILL-01",
        "Kill switch works",
        "A suspension takes effect at once: no allow for the agent later than 5 s after it.",
        asi=("ASI10", "ASI04", "ASI08"),
        maestro=("L7 Compromised Agents",),
        ai_rmf=("MANAGE 2.4", "GOVERN 1.7"),
        csf=("RS.MI-01",),
        sp800_53=("IR-4(5)", "AC-2(13)", "AC-3(8)"),
        coverage="partial",
        coverage_note="kill drills are not recorded as such; every real suspension is measured",
    ),
    ControlSpec(
        "CP-RATE-01",
        "Budgets and circuit breakers",
        "Per-agent, per-tool budgets are enforced; going over denies and raises a finding.",
        asi=("ASI02", "ASI08"),
        maestro=("L7 Agent Pricing Model Manipulation", "L4 Resource Hijacking"),
        ai_rmf=("MEASURE 2.6",),
        csf=("PR.IR-04",),
        sp800_53=("SC-5",),
    ),
    ControlSpec(
        "CP-MON-01",
        "Behavioural anomaly detection",
        "A detector scores every decision against the agent's baseline and raises findings.",
        asi=("ASI01", "ASI03", "ASI09", "ASI10"),
        maestro=("L5 Evasion of Detection",),
        ai_rmf=("MEASURE 2.4", "MEASURE 3.1", "MANAGE 4.1"),
        csf=("DE.CM-03", "DE.CM-09", "DE.AE-02", "DE.AE-08"),
        sp800_53=("SI-4", "AC-2(12)", "AU-6", "IR-4(13)"),
    ),
    ControlSpec(
        "CP-INC-01",
        "Detections become incidents",
        "Every critical detection is closed with a reason or linked to a containment action.",
        ai_rmf=("GOVERN 4.3", "MANAGE 2.3", "MANAGE 4.3"),
        csf=("DE.AE-08", "RS.MA-01", "RS.AN-03", "RS.MI-01", "RS.CO-02"),
        sp800_53=("IR-4", "IR-5", "IR-6"),
    ),
    ControlSpec(
        "CP-AUD-01",
        "Audit completeness",
        "Every decision, issuance, revocation, approval and lifecycle change has one complete "
        "record (actor, subject, action, outcome, time) and sequence numbers have no gaps.",
        asi=("ASI02", "ASI08", "ASI09", "ASI10"),
        maestro=("L7 Repudiation",),
        ai_rmf=("MEASURE 2.8", "MANAGE 4.3"),
        csf=("PR.PS-04", "DE.CM-03"),
        sp800_53=("AU-2", "AU-3", "AU-8", "AU-12"),
    ),
    ControlSpec(
        "CP-AUD-02",
        "Tamper-evident, non-repudiable log",
        "Records are hash-chained, checkpoints are signed at the configured interval, and the "
        "whole log verifies.",
        asi=("ASI08", "ASI10"),
        maestro=("L5 Poisoning Observability Data", "L5 Compromised Observability Tools"),
        csf=("RS.AN-06", "RS.AN-07", "PR.DS-01"),
        sp800_53=("AU-9", "AU-9(2)", "AU-9(3)", "AU-10", "AU-10(1)", "AU-10(2)"),
    ),
    ControlSpec(
        "CP-AUD-03",
        "Attribution chain",
        "Every agent action resolves to an accountable human (owner or on-behalf-of principal); "
        "administrative changes are made by human operators, not agent identities.",
        asi=("ASI03", "ASI09"),
        ai_rmf=("GOVERN 2.1", "MEASURE 2.8"),
        csf=("PR.AA-05",),
        sp800_53=("AU-3", "AU-10(1)", "AC-2(9)"),
        nhi=("NHI10",),
    ),
    ControlSpec(
        "CP-AUD-04",
        "Retention and export",
        "Audit records are kept from the first one on and can be exported as OCSF with proofs.",
        ai_rmf=("MANAGE 4.3",),
        csf=("PR.PS-04", "RS.AN-07"),
        sp800_53=("AU-11", "AU-9(4)", "AU-9(6)"),
    ),
)

BY_ID = {c.id: c for c in CONTROLS}
