"""Behavioural governance: per-agent baselines, detectors and escalation thresholds.

Pure and in memory (no I/O): ``BehaviourMonitor`` runs on the decision path and costs a few
microseconds per call; ``warden.service.behaviour`` persists findings and learned baselines off
the hot path and carries out the escalations (notify, step-up, suspend).
"""

from warden.behaviour.baseline import Declared, parse_declared
from warden.behaviour.monitor import BehaviourMonitor, Escalation, Observation
from warden.behaviour.settings import BehaviourSettings, Thresholds
from warden.behaviour.window import SlidingCounter

__all__ = [
    "BehaviourMonitor",
    "BehaviourSettings",
    "Declared",
    "Escalation",
    "Observation",
    "SlidingCounter",
    "Thresholds",
    "parse_declared",
]
