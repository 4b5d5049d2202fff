"""The benchmark's sections, one module each (scripts/benchmark.py runs them in this order).

    common       the run, the one timing helper, pgbench, /proc readers, the report's tables
    endpoints    nginx with a fixed answer, the floor function, the relay process
    warm         warm path: invoke per call against the floor
    throughput   calls/s by concurrency: pgbench, invoke_many, deliver(); a 50 ms batch
    cold         cold start, and the import profile
    payloads     payload sizes
    memory       the backend's memory
    delivery     commit-time delivery: queueing, deliver() against the emulator, latency
    chart        the SVG of calls/s against concurrency
"""
