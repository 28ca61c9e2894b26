"""``hotmem validate``: a scenario run in the model and in a real Linux booted under QEMU, and
the diff of the two, observable by observable (see diff.py for how each is compared).

    from hotmem.validate import load_scenario, validate
    sc = load_scenario("scenarios/d_mom1_128M_online_movable.toml")
    model, kernel, diff = validate(sc)
    print(render_report(sc, model, kernel, diff))
"""
from hotmem.validate.diff import Diff, Observable, diff_runs
from hotmem.validate.report import render_report, render_summary
from hotmem.validate.runner import Run, StepResult, run_model, run_qemu
from hotmem.validate.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = ["Diff", "Observable", "Run", "Scenario", "ScenarioError", "StepResult", "calibrated_model",
           "diff_runs", "load_scenario", "parse_scenario", "render_report", "render_summary",
           "run_model", "run_qemu", "validate"]


def calibrated_model(sc: Scenario, real: Run, backend=None) -> Run:
    """The model run; where the kernel's boot MemTotal differs from the model's (a kernel build
    the model does not know), rerun with the one-figure boot reservation (qemu_pc_calibration)
    on the first node with memory, recalibrated by the gap, when no other node's MemTotal
    differs. With the boot modelled by cause (hotmem/arch/x86_setup.py) no recording needs it."""
    from hotmem.init.main import qemu_pc_calibration
    model = run_model(sc, backend)
    if sc.machine.arch != "x86_64":      # the one-figure calibration is QEMU pc's
        return model
    reserved = qemu_pc_calibration(sc.machine.kernel)[0]
    first = min(n for n, size in sc.machine.boot_memory.items() if size)

    def node_totals(run):
        files = run.steps[0].reading["files"]
        return {k: int(v.split()[3]) for k, v in files.items()
                if k.startswith("/sys/devices/system/node/node") and k.endswith("/meminfo")}
    mt, rt = node_totals(model), node_totals(real)
    gaps = {k: mt.get(k, 0) - rt.get(k, 0) for k in set(mt) | set(rt)}
    key = f"/sys/devices/system/node/node{first}/meminfo"
    gap_kb = gaps.get(key, 0)
    others = any(v for k, v in gaps.items() if k != key)
    if gap_kb and not others and gap_kb % 4 == 0:
        # the one-figure form of the boot reservations, recalibrated against its own boot
        # (where the model's boot is modelled by cause, the gap is measured again there)
        lump = run_model(sc, backend, reserved)
        gap_kb = node_totals(lump).get(key, 0) - rt.get(key, 0)
        model = run_model(sc, backend, reserved + gap_kb // 4)
        model.info["calibration_pages"] = gap_kb // 4
    return model


def validate(sc: Scenario, kernel=None, log=print, install=False, backend=None):
    """Run ``sc`` on a real kernel and in the model: (model Run, kernel Run, Diff)."""
    real = run_qemu(sc, kernel=kernel, log=log, install=install)
    model = calibrated_model(sc, real, backend)
    return model, real, diff_runs(sc, model, real)
