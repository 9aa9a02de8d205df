"""Anomaly detection on the live trail: statistical, scikit-learn and rule detectors.

See base.Detector for the protocol, anomaly.Anomaly for the record, event_frame for the input,
observations for the metric streams and pipeline for detect_all.
"""
