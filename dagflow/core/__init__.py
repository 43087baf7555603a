"""The pure core of dagflow: definitions, the lazy graph, the state machine, retry policies.

Nothing here imports `distributed`, a database, a network or UI library, reads the clock or
sleeps; everything is testable without a cluster.
"""
