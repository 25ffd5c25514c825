"""Behavioural governance: per-agent baselines, detectors and escalation thresholds.

Pure: ``BehaviourMonitor`` runs on the decision path and costs a few microseconds per call in
memory, or one round trip when its counters are shared between replicas
(``warden.core.counters``, ADR 0094); ``warden.service.behaviour`` persists findings and learned
baselines off the hot path and carries out the escalations (notify, step-up, suspend).
"""

from warden.behaviour.baseline import Declared, parse_declared
from warden.behaviour.monitor import BehaviourMonitor, Escalation, Observation
from warden.behaviour.settings import BehaviourSettings, Thresholds
from warden.behaviour.window import SlidingCounter
from warden.core.counters import Claim, Reserved, SharedCounters

__all__ = [
    "BehaviourMonitor",
    "BehaviourSettings",
    "Claim",
    "Declared",
    "Escalation",
    "Observation",
    "Reserved",
    "SharedCounters",
    "SlidingCounter",
    "Thresholds",
    "parse_declared",
]
