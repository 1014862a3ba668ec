"""Site settings and errors of the cluster path, without a cluster: the study's ``queue:`` section and the
user config rendered into SLURM / PBS Pro / Torque scripts (checked field by field), the submit path
through stand-in ``sbatch``/``squeue``/``scancel`` commands, the job's end time from the scheduler,
one-line errors (bad queue settings, no VASP, unreachable MongoDB) before anything is written, and the
``cellsim fw`` commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from workflow_helpers import cellsim

from cellsim.config.rundir import RunDir
from cellsim.config.study import load_study

FAKE = Path(__file__).resolve().parents[1] / "fake_vasp"

QUEUE = {
    "partition": "compute",
    "account": "chem123",
    "qos": "normal",
    "nodes": 2,
    "ntasks_per_node": 64,
    "cpus_per_task": 2,
    "mem": "250G",
    "walltime": "1-12:00:00",
    "constraint": "amd",
    "modules": ["vasp/6.4.2", "intel-mpi/2021"],
    "pre_commands": ["ulimit -s unlimited"],
    "extra_directives": ["#SBATCH --mail-type=END"],
}


def make_run(paper_run: Path, path: Path, **queue: object) -> Path:
    shutil.copytree(paper_run, path)
    study = load_study(path / "study.yaml")
    study.md.total_time_ps, study.md.segment_time_ps = 0.05, 0.02
    for k, v in queue.items():
        setattr(study.queue, k, v)
    (path / "study.yaml").write_text(study.to_yaml())
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A shell with stand-in scheduler commands (they log their arguments) and the fake VASP."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sched.log"
    (bin_dir / "sbatch").write_text(
        f'#!/bin/sh\necho "sbatch $*" >> {log}\nn=$(grep -c sbatch {log})\necho "$((4240 + n))"\n'
    )
    (bin_dir / "squeue").write_text(
        f'#!/bin/sh\necho "squeue $*" >> {log}\n'
        'if [ -n "$FAKE_SQUEUE_STATE" ]; then echo "$FAKE_SQUEUE_STATE"; exit 0; fi\n'
        'if [ -n "$FAKE_SQUEUE_END" ]; then echo "$FAKE_SQUEUE_END"; exit 0; fi\n'
        'echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1\n'
    )
    (bin_dir / "scancel").write_text(f'#!/bin/sh\necho "scancel $*" >> {log}\n')
    (bin_dir / "qstat").write_text('#!/bin/sh\nprintf "%b" "$FAKE_QSTAT"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    e = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FAKE_VASP", "MONGOMOCK", "PMG_VASP", "CELLSIM", "SLURM"))
    }
    e.update(
        PATH=f"{bin_dir}{os.pathsep}{FAKE}{os.pathsep}{e['PATH']}",
        CELLSIM_CACHE=str(tmp_path / "cache"),
        CELLSIM_CONFIG=str(tmp_path / "config.yaml"),
        CELLSIM_CUSTODIAN_POLLING_S="0.1",
        COLUMNS="200",
    )
    return e


def cellsim_here(
    args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """The CLI in this process (for commands that stop before FireWorks is imported): exit code, out, err."""
    from cellsim.cli import main

    for k in [k for k in os.environ if k.startswith("CELLSIM")]:
        monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    with pytest.raises(SystemExit, match=r"^\d*$") as exc:  # a status, never a message
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def directives(script: str, prefix: str) -> list[str]:
    return [line[len(prefix) :].strip() for line in script.splitlines() if line.startswith(prefix)]


@pytest.mark.slow
def test_study_queue_renders_a_complete_slurm_script(paper_run: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """`cellsim submit --queue slurm` for a study with a queue: section over a user config."""
    Path(env["CELLSIM_CONFIG"]).write_text(
        "vasp_cmd: vasp_std\nqueue:\n  partition: short\n  account: from-config\n  mem: 10G\n"
        "  modules: [config-module]\n  cpus_per_task: 4\n"
    )
    run = make_run(paper_run, tmp_path / "run", **{**QUEUE, "account": None, "cpus_per_task": None})
    r = cellsim(["submit", str(run), "--queue", "slurm"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{run}: submitted job 4241" in r.stdout
    script = RunDir(run).job_script.read_text()
    out_dir = RunDir(run).queue_dir.resolve()
    assert script.splitlines()[0] == "#!/bin/bash -l"  # modules need a login shell
    assert directives(script, "#SBATCH") == [
        f"--job-name=cellsim-{run.name}",
        "--nodes=2",
        "--ntasks-per-node=64",
        "--cpus-per-task=4",  # the config's (the study leaves it null)
        "--time=1-12:00:00",
        "--partition=compute",  # the study's over the config's
        "--account=from-config",
        "--qos=normal",
        "--mem=250G",
        "--constraint=amd",
        f"--output={out_dir}/cellsim-%j.out",
        "--mail-type=END",
    ]
    body = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert body[0] == "export CELLSIM_JOB_START=$(date +%s)"
    assert body[1:4] == ["module load vasp/6.4.2", "module load intel-mpi/2021", "ulimit -s unlimited"]
    assert "export CELLSIM_MPI_LAUNCHER=srun" in body and "export OMP_NUM_THREADS=4" in body
    assert f"export CELLSIM_CONFIG={env['CELLSIM_CONFIG']}" in body  # the job reads the same settings
    assert body[-2] == f"cd {out_dir}"
    assert body[-1] == f"{sys.executable} -m cellsim.cli fw-launch {run.resolve()}"
    log = (tmp_path / "sched.log").read_text()
    assert f"sbatch --parsable {RunDir(run).job_script.resolve()}" in log
    # the workflow is in the run's own store, tagged with the run
    st = cellsim(["fw", "list", str(run)], env)
    assert st.returncode == 0 and st.stdout.count("READY") == 1 and st.stdout.count("WAITING") == 3, st.stdout
    # submitted again while its job is queued: nothing new
    r = cellsim(["submit", str(run), "--queue", "slurm"], {**env, "FAKE_SQUEUE_STATE": "PENDING"})
    assert r.returncode == 0 and "already queued" in r.stdout and "job 4241" in r.stdout, r.stdout
    assert (tmp_path / "sched.log").read_text().count("sbatch") == 1


def test_pbs_pro_and_torque_scripts(paper_run: Path, tmp_path: Path) -> None:
    from cellsim.config.settings import Settings
    from cellsim.workflow.queue import job_command, render_script, resolve_queue

    pbs_queue = {k: v for k, v in QUEUE.items() if k not in ("qos", "extra_directives")}
    run = make_run(paper_run, tmp_path / "run", **{**pbs_queue, "constraint": "model=icx"})
    rd = RunDir(run)
    study = rd.load_study()
    q = resolve_queue(study, Settings(), "pbs")
    assert (q.scheduler, q.ntasks, q.mpi_launcher) == ("pbspro", 128, "mpirun -np 128")
    script = render_script(rd, q, job_command(rd, None))
    out_dir = rd.queue_dir.resolve()
    assert directives(script, "#PBS") == [
        "-N cellsim-run",
        "-l select=2:ncpus=128:mpiprocs=64:ompthreads=2:mem=250gb:model=icx",
        "-l walltime=36:00:00",
        "-q compute",
        "-A chem123",
        "-j oe",
        f"-o {out_dir}/",
        "-V",
    ]
    study.queue.constraint = "ib"
    study.queue.mpi_launcher = "mpiexec -n {ntasks} --map-by ppr:{ntasks_per_node}:node"
    q = resolve_queue(study, Settings(), "torque")
    assert q.mpi_launcher == "mpiexec -n 128 --map-by ppr:64:node"
    script = render_script(rd, q, job_command(rd, None), {"CELLSIM_MPI_LAUNCHER": q.mpi_launcher})
    assert directives(script, "#PBS")[1:4] == ["-l nodes=2:ppn=128:ib", "-l mem=500gb", "-l walltime=36:00:00"]
    assert "export CELLSIM_MPI_LAUNCHER='mpiexec -n 128 --map-by ppr:64:node'" in script


def test_a_fireworks_queue_adapter_still_works(paper_run: Path, tmp_path: Path, repo: Path) -> None:
    """--qadapter: FireWorks renders the script; cellsim's job command (and exports) replace rocket_launch."""
    run = make_run(paper_run, tmp_path / "run")
    code = (
        "import sys; from pathlib import Path; from cellsim.workflow.queue import qadapter_script, job_command; "
        "from cellsim.config.rundir import RunDir; rd = RunDir(sys.argv[1]); "
        "print(*qadapter_script(rd, Path(sys.argv[2]), job_command(rd, None)), sep='\\n')"
    )
    qa = repo / "templates" / "my_qadapter_slurm.yaml"
    out = subprocess.run([sys.executable, "-c", code, str(run), str(qa)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "slurm"
    assert directives(out.stdout, "#SBATCH") == [
        "--nodes=1",
        "--ntasks-per-node=1",
        "--cpus-per-task=1",
        "--time=24:00:00",
        f"--job-name=cellsim-{run.name}",
        f"--output=cellsim-{run.name}-%j.out",
        f"--error=cellsim-{run.name}-%j.error",
    ]
    assert f"{sys.executable} -m cellsim.cli fw-launch {run.resolve()}" in lines


def test_vasp_command_gets_the_mpi_launcher() -> None:
    from cellsim.config.settings import Settings

    s = Settings(mpi_launcher=("srun", "--cpu-bind=cores"))
    assert s.vasp_commands() == (["srun", "--cpu-bind=cores", "vasp_std"], ["srun", "--cpu-bind=cores", "vasp_gam"])
    s = Settings(vasp_cmd=("mpirun", "-np", "8", "vasp_std"), mpi_launcher=("srun",))
    assert s.vasp_commands()[0] == ["mpirun", "-np", "8", "vasp_std"]  # has its own launcher


@pytest.mark.parametrize(
    ("queue_yaml", "args", "expected"),
    [
        ("  walltime: tomorrow\n", ["--queue", "slurm"], "queue.walltime: Value error, 'tomorrow': expected a time"),
        ("  qos: high\n", ["--queue", "pbs"], "queue.qos = 'high': a SLURM setting"),
        ("  mem: lots\n", ["--queue", "slurm"], "queue.mem: Value error, 'lots'"),
        ("  mpi_launcher: 'mpirun -np {n}'\n", ["--queue", "slurm"], "unknown placeholder {n}"),
        ("  constraint: icx\n", ["--queue", "pbs"], "PBS Pro takes a select resource key=value"),
        ("  extra_directives: ['#PBS -l x']\n", ["--queue", "slurm"], "does not start with #SBATCH"),
        ("", ["--queue", "lsf"], "--queue 'lsf': expected one of local, slurm, pbs"),
    ],
)
def test_bad_queue_settings_are_one_line_errors(
    paper_run: Path,
    tmp_path: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    queue_yaml: str,
    args: list[str],
    expected: str,
) -> None:
    run = make_run(paper_run, tmp_path / "run")
    text = (run / "study.yaml").read_text()
    if queue_yaml:
        start = text.index("queue:\n")
        (run / "study.yaml").write_text(text[:start] + "queue:\n" + queue_yaml)
    code, out, err = cellsim_here(["submit", str(run), *args], env, monkeypatch, capsys)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], err
    assert not (run / "md").exists() and not (run / "workflow").exists()  # nothing written


def test_bad_user_config_is_one_line(
    paper_run: Path,
    tmp_path: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = make_run(paper_run, tmp_path / "run")
    Path(env["CELLSIM_CONFIG"]).write_text("queue:\n  nodes: 0\n")
    code, _, err = cellsim_here(["submit", str(run), "--queue", "slurm"], env, monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "config.yaml: queue.nodes: Input should be greater than or equal to 1" in err
    Path(env["CELLSIM_CONFIG"]).write_text("vasp_comand: vasp_std\n")
    code, _, err = cellsim_here(["submit", str(run)], env, monkeypatch, capsys)
    assert code == 2 and "unknown setting 'vasp_comand'" in err


@pytest.mark.slow
def test_missing_vasp_refused_before_anything_is_written(paper_run: Path, tmp_path: Path, env: dict[str, str]) -> None:
    run = make_run(paper_run, tmp_path / "run")
    no_vasp = {**env, "PATH": os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != str(FAKE))}
    r = cellsim(["submit", str(run)], no_vasp)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "VASP not found on this machine" in lines[0] and "vasp_gam" in lines[0], r.stderr
    assert not (run / "md").exists() and not (run / "workflow").exists()
    r = cellsim(["submit", str(run), "--queue", "slurm"], {**no_vasp, "CELLSIM_VASP_CMD": "/opt/none/vasp_std"})
    # queue runs look vasp up on the compute node, but a missing absolute path is refused here
    assert r.returncode == 0 and "looked up on the compute node" in r.stdout, r.stdout + r.stderr
    r = cellsim(
        ["submit", str(run), "--queue", "slurm"],
        {**no_vasp, "CELLSIM_VASP_CMD": "/opt/none/vasp_std", "CELLSIM_VASP_GAMMA_CMD": "/opt/none/vasp_gam"},
    )
    assert r.returncode == 2 and "/opt/none/vasp_gam or /opt/none/vasp_std: no such executable" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("launchpad", "where"),
    [
        ("host: 127.0.0.1\nport: 1\nname: cellsim\nusername: me\npassword: s3cret-pw\n", "127.0.0.1:1"),
        ("host: mongodb://me:s3cret-pw@127.0.0.1:1/cellsim\nuri_mode: true\nname: cellsim\n", "mongodb://***@"),
        ("host: 'mongodb+srv://me:s3cret-pw@nowhere.invalid/db'\nuri_mode: true\nname: db\n", "mongodb+srv://***@"),
    ],
)
def test_unreachable_mongodb_is_one_line_without_the_password(
    paper_run: Path, tmp_path: Path, env: dict[str, str], launchpad: str, where: str
) -> None:
    run = make_run(paper_run, tmp_path / "run")
    lp = tmp_path / "my_launchpad.yaml"
    lp.write_text(launchpad)
    r = cellsim(["submit", str(run), "--launchpad", str(lp)], {**env, "CELLSIM_MONGO_TIMEOUT_MS": "1500"})
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"my_launchpad.yaml: MongoDB at {where}" in lines[0], r.stderr
    assert "not reachable" in lines[0] and "s3cret" not in r.stderr + r.stdout
    assert not (run / "md").exists() and not (run / "workflow").exists()


def test_job_end_time_from_the_scheduler(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    from cellsim.config.settings import Settings, job_end_time

    for k in ("SLURM_JOB_ID", "SLURM_JOB_END_TIME", "PBS_JOBID", "PBS_WALLTIME", "CELLSIM_JOB_START"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("PATH", env["PATH"])
    assert job_end_time(Settings()) is None  # not in a job
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("FAKE_SQUEUE_END", "2031-05-04T03:02:01")
    assert job_end_time(Settings()) == datetime(2031, 5, 4, 3, 2, 1).timestamp()  # squeue -o %e, local time
    monkeypatch.setenv("SLURM_JOB_END_TIME", "1999999999")
    assert job_end_time(Settings()) == 1999999999.0
    monkeypatch.setenv("CELLSIM_JOB_START", "1000")
    assert job_end_time(Settings(walltime_s=60)) == 1060.0  # the setting wins
    for k in ("SLURM_JOB_ID", "SLURM_JOB_END_TIME"):
        monkeypatch.delenv(k)
    monkeypatch.setenv("PBS_JOBID", "12.server")
    monkeypatch.setenv(
        "FAKE_QSTAT", "    Resource_List.walltime = 02:00:00\\n    resources_used.walltime = 00:30:00\\n"
    )
    # the clock frozen: the end is now + what qstat says is left, exactly, however slow the machine
    monkeypatch.setattr(time, "time", lambda: 1_000_000.0)
    assert job_end_time(Settings()) == 1_000_000.0 + 5400
    monkeypatch.setenv("FAKE_QSTAT", "    Walltime.Remaining = 600\\n")
    assert job_end_time(Settings()) == 1_000_000.0 + 600
    monkeypatch.setenv("FAKE_QSTAT", "")
    monkeypatch.setenv("PBS_WALLTIME", "3600")
    assert job_end_time(Settings()) == 4600.0


def test_walltime_handler_stops_before_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a frozen clock: the STOPCAR is due once less than max(3 x the longest step, the margin) is left, not
    a second before; the handler counts from its own start, not from custodian's process-wide one."""
    import datetime as dt_module

    from cellsim.engines.vasp import JobEndWalltimeHandler, md_handlers

    (tmp_path / "OUTCAR").write_text(
        " vasp fake\n number of bands    NBANDS=  8\n total plane-waves  NPLWV =  10\n   IBRION =      0\n"
        "      LOOP+:  cpu time  2.0000: real time  2.0000\n"
    )
    real_datetime = dt_module.datetime
    clock = {"t": 1_000_000.0}

    class FrozenDatetime(real_datetime):
        @classmethod
        def now(cls, tz: dt_module.tzinfo | None = None) -> dt_module.datetime:  # type: ignore[override]
            return real_datetime.fromtimestamp(clock["t"], tz)

    # one clock for cellsim (time.time: the end time) and custodian (datetime.now: the time used)
    monkeypatch.setattr(time, "time", lambda: clock["t"])
    monkeypatch.setattr(dt_module, "datetime", FrozenDatetime)
    monkeypatch.setenv("CUSTODIAN_WALLTIME_START", "Mon Jan 01 00:00:00 UTC 2001")  # ignored: a stale start

    wall = md_handlers(clock["t"] + 30, margin_s=20)[-1]
    assert isinstance(wall, JobEndWalltimeHandler)
    assert (wall.wall_time, wall.buffer_time) == (30, 20)
    assert wall.start_time == real_datetime.fromtimestamp(clock["t"])
    steps = JobEndWalltimeHandler(clock["t"] + 25, buffer_time=1)  # 3 x the 2 s step (6 s) outweighs 1 s
    assert not wall.check(str(tmp_path)) and not steps.check(str(tmp_path))

    clock["t"] += 10.0  # 20 s left: exactly the margin, not less
    assert not wall.check(str(tmp_path))
    clock["t"] += 0.5  # 19.5 s left
    assert wall.check(str(tmp_path))
    assert not steps.check(str(tmp_path))  # 14.5 s left of its 25, above 6 s
    clock["t"] += 8.5  # 6 s left: exactly 3 steps
    assert not steps.check(str(tmp_path))
    clock["t"] += 0.5
    assert steps.check(str(tmp_path))

    wall.correct(str(tmp_path))
    assert (tmp_path / "STOPCAR").read_text().strip() == "LSTOP = .TRUE."


@pytest.mark.slow
def test_fw_commands_inspect_and_repair_a_run(paper_run: Path, tmp_path: Path, env: dict[str, str]) -> None:
    run = make_run(paper_run, tmp_path / "run")
    assert cellsim(["submit", str(run), "--queue", "slurm"], env).returncode == 0
    # a job that died with a Firework RUNNING: simulate the checkout of the first segment by job 4241
    mark = (
        "import sys; from cellsim.workflow.store import WorkflowStore; from cellsim.config.rundir import RunDir; "
        "s = WorkflowStore(RunDir(sys.argv[1])); from fireworks import FWorker; "
        "s.lpad.checkout_fw(FWorker(name='cellsim run slurm:4241', query=s.query()), sys.argv[2]); s.close()"
    )
    out = subprocess.run([sys.executable, "-c", mark, str(run), str(tmp_path)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    fws = cellsim(["fw", "list", str(run)], env)
    assert "RUNNING" in fws.stdout and "slurm:4241" in fws.stdout, fws.stdout
    busy = cellsim(["fw", "reset", str(run), "--yes"], {**env, "FAKE_SQUEUE_STATE": "RUNNING"})
    assert busy.returncode == 2 and "job 4241 is queued or running this run" in busy.stderr, busy.stderr
    lost = cellsim(["fw", "detect-lost", str(run)], env)  # squeue: job 4241 is gone
    assert lost.returncode == 0 and "lost runs rerun: [" in lost.stdout, lost.stdout + lost.stderr
    fws = cellsim(["fw", "list", str(run)], env)
    assert "RUNNING" not in fws.stdout and fws.stdout.count("READY") == 1, fws.stdout
    assert "none (no FIZZLED" in cellsim(["fw", "rerun", str(run)], env).stdout
    assert cellsim(["fw", "reset", str(run)], env).returncode == 2  # needs --yes
    reset = cellsim(["fw", "reset", str(run), "--yes"], env)
    assert reset.returncode == 0 and "removed 4 Fireworks" in reset.stdout, reset.stdout + reset.stderr
    assert "0 Fireworks" in cellsim(["fw", "list", str(run)], env).stdout
    st = cellsim(["status", str(run)], env)
    assert st.returncode == 0 and "0 of 25 planned MD steps" in st.stdout and "jobs: 1" in st.stdout, st.stdout


@pytest.mark.slow
def test_campaign_file_bounds_the_runs_at_once(paper_run: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """`cellsim submit campaign.yaml`: max_jobs runs get a job; the next starts when a chain ends."""
    import json

    runs = [make_run(paper_run, tmp_path / name) for name in ("a", "b")]
    camp = tmp_path / "campaign.yaml"
    camp.write_text("runs: [a, b]\nmax_jobs: 1\n")
    r = cellsim(["submit", str(camp), "--queue", "slurm"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{runs[0]}: submitted job 4241" in r.stdout and f"{runs[1]}: waiting (campaign)" in r.stdout, r.stdout
    state_file = next(tmp_path.glob(".cellsim-campaign-*.json"))
    assert [e["state"] for e in json.loads(state_file.read_text())["runs"]] == ["active", "waiting"]
    # a's chain ended (squeue no longer knows job 4241): the next advance submits b, after the given job
    code = (
        "import sys; from pathlib import Path; from cellsim.workflow.campaign import campaign_advance; "
        "print(campaign_advance(Path(sys.argv[1]), finished=Path(sys.argv[2]), after='slurm:4241'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(state_file), str(runs[0])], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and "campaign: submitted" in out.stdout, out.stdout + out.stderr
    assert [e["state"] for e in json.loads(state_file.read_text())["runs"]] == ["done", "active"]
    assert "sbatch --parsable --dependency=afterany:4241" in (tmp_path / "sched.log").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs: [a]\nmax_job: 2\n")
    r = cellsim(["submit", str(bad)], env)
    assert r.returncode == 2 and "max_job: unknown field" in r.stderr
