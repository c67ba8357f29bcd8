"""Ingest: camera frames and edge-camera plate reads into Gantry, validated, and never lost once accepted.

Frames (topic ``frames``):
    sources   image files, image folders and video files -> timed images
    frames    sampling to a rate, motion gating, JPEG re-encoding -> ``Frame``
    readers   one supervised reader thread per streaming camera (``gantry ingest run``)
    publish   the acknowledged Kafka producer, and the "is this camera configured" rule

Edge-camera reads (topic ``plate_reads``):
    edge_formats  Gantry JSON, Hikvision ISAPI XML/multipart, access-control query -> ``PlateRead``
    auth          camera tokens from env or file
    server        the HTTP endpoint (``gantry ingest serve``)
    delivery      broker acks, and the spool through broker outages (with ``spool``)
    quarantine    what the spool can never deliver or read, set aside with the reason
    snapshots     pictures stored by reference, pruned with the reads' retention
    reads         the shared read-building step and JSONL batch import

``cli`` holds the commands; ``bench``, ``synthetic`` and ``examples`` serve the benchmark and tests.
See docs/ingest.md.
"""
