"""Benchmark session hooks: the machine a run was made on goes into the JSON result
(pytest-benchmark records the CPU, Python and the git commit; this adds RAM and usable CPUs)."""
import os


def pytest_benchmark_update_machine_info(config, machine_info):
    with open("/proc/meminfo") as f:
        mem = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f
               if line.startswith(("MemTotal", "MemAvailable"))}
    machine_info["mem_total_bytes"] = mem.get("MemTotal")
    machine_info["mem_available_bytes"] = mem.get("MemAvailable")
    machine_info["usable_cpus"] = len(os.sched_getaffinity(0))
