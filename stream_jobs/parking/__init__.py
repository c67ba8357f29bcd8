"""Parking sessions: the gate decisions that let a car through, paired into stays (:mod:`.job`)."""
