"""A fake VASP for tests: checks the MD inputs it is given and writes what VASP's MD writes.

Pure Python (no numpy/pymatgen), so any python3 runs it. Invoked through the ``vasp_std`` / ``vasp_gam``
wrappers beside this file (custodian picks the Gamma-only one for a 1x1x1 Gamma KPOINTS).

Behaviour
* Refuses inputs that are not an NVT Nose MD (IBRION, MDALGO, TEBEG/TEEND, ISIF, NSW, POTIM, KPOINTS,
  POTCAR or POTCAR.spec) with a message on stdout and exit code 1.
* Runs NSW steps. Positions move by a deterministic step-dependent displacement
  ``d(k)_i = 0.0005 * sin(0.1 * k + i)`` (fractional, each axis), where k is the global step; the POSCAR
  comment ``fake-step=K`` says where a continuation starts (K = 0 otherwise). Each step appends a frame
  to XDATCAR, a line to OSZICAR, and rewrites CONTCAR (with a velocity block) for that step.
* FAKE_VASP_PLANT=real_optlay|edddav: print that VASP error to stdout and exit 1 while the INCAR still
  has the setting custodian is expected to change (LREAL not False / ALGO not All).
* FAKE_VASP_PLANT=edddav@K: the same error in the middle of a run, right after global step K (1-based)
  was written (XDATCAR, OSZICAR and CONTCAR hold steps up to K), while ALGO is not All.
* FAKE_VASP_DIE_AFTER=n: kill itself (SIGKILL) after n steps of this run.
* FAKE_VASP_STEP_SECONDS: sleep per step (to let a test kill it mid-run or reach a walltime).
* FAKE_VASP_HOLD=path: after the first step, wait while that file exists (at most 600 s): a test holds
  the run mid-segment, in a known state, and releases it by deleting the file (no race with a sleep).
  FAKE_VASP_HOLD_AT=K: hold after global step K (1-based) instead, in whichever segment holds it.
* FAKE_VASP_AWAIT_STOP_AT=K: after global step K, wait for a STOPCAR that asks for a stop (at most 600 s):
  a walltime stop lands after exactly that step, whenever the handler gets to write it.
* STOPCAR with LSTOP = .TRUE. (custodian's WalltimeHandler): stop cleanly after the current step, as
  VASP does: CONTCAR is that step's, the OUTCAR is finished, exit code 0.
* OUTCAR: a header Outcar can parse, one ``LOOP+`` timing line per step (the WalltimeHandler reads the
  time per step from them) and the closing timing block.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time


def read_incar(path: str) -> dict[str, str]:
    tags = {}
    for raw in open(path):
        line = raw.split("!")[0].split("#")[0]
        for part in line.split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                tags[k.strip().upper()] = v.strip()
    return tags


def read_poscar(path: str):
    lines = open(path).read().splitlines()
    comment = lines[0]
    scale = float(lines[1].split()[0])
    lattice = [[float(x) * scale for x in lines[i].split()[:3]] for i in (2, 3, 4)]
    species = lines[5].split()
    counts = [int(x) for x in lines[6].split()]
    n = sum(counts)
    k = 7
    if lines[k].strip()[0] in "sS":
        k += 1
    direct = lines[k].strip()[0] in "dD"
    coords = []
    for i in range(n):
        vals = [float(x) for x in lines[k + 1 + i].split()[:3]]
        coords.append(vals)
    if not direct:
        raise SystemExit("fake VASP: POSCAR must be Direct")
    step = 0
    if "fake-step=" in comment:
        step = int(comment.split("fake-step=")[1].split()[0])
    return lattice, species, counts, coords, step


def fail(msg: str) -> None:
    print(f"fake VASP: {msg}")
    sys.exit(1)


def main() -> None:
    binary = sys.argv[sys.argv.index("--binary") + 1] if "--binary" in sys.argv else "std"
    for f in ("INCAR", "POSCAR", "KPOINTS"):
        if not os.path.isfile(f):
            fail(f"missing {f}")
    if not (os.path.isfile("POTCAR") or os.path.isfile("POTCAR.spec")):
        fail("missing POTCAR (or POTCAR.spec)")
    incar = read_incar("INCAR")
    if incar.get("IBRION") != "0":
        fail(f"IBRION = {incar.get('IBRION')}, not an MD run")
    if incar.get("MDALGO") != "2":
        fail("MDALGO must be 2 (Nose-Hoover)")
    if "TEBEG" not in incar or float(incar["TEBEG"]) != float(incar.get("TEEND", incar["TEBEG"])):
        fail("TEBEG/TEEND missing or different")
    if int(incar.get("ISIF", "2")) > 2:
        fail("ISIF > 2 in NVT")
    nsw = int(incar.get("NSW", "0"))
    if nsw < 1:
        fail("NSW < 1")
    potim = float(incar["POTIM"])
    kp = open("KPOINTS").read().split()
    plant = [p.strip() for p in os.environ.get("FAKE_VASP_PLANT", "").split(",") if p.strip()]
    algo_all = incar.get("ALGO", "Fast").upper() == "ALL"
    if "real_optlay" in plant and incar.get("LREAL", "Auto").strip(".").upper()[0] != "F":
        print(" REAL_OPTLAY: internal error (fake)")
        sys.exit(1)
    if "edddav" in plant and not algo_all:
        print(" Error EDDDAV: Call to ZHEGV failed (fake)")
        sys.exit(1)
    fail_at = {int(p.split("@")[1]) for p in plant if p.startswith("edddav@")} if not algo_all else set()
    die_after = int(os.environ.get("FAKE_VASP_DIE_AFTER", "0"))
    pause = float(os.environ.get("FAKE_VASP_STEP_SECONDS", "0"))
    hold = os.environ.get("FAKE_VASP_HOLD", "")
    hold_at = int(os.environ.get("FAKE_VASP_HOLD_AT", "0"))
    await_stop_at = int(os.environ.get("FAKE_VASP_AWAIT_STOP_AT", "0"))
    lattice, species, counts, coords, step0 = read_poscar("POSCAR")
    n = len(coords)
    with open("OUTCAR", "w") as out:
        out.write(f" vasp.6.4.2 fake ({binary} binary), KPOINTS {' '.join(kp[-4:])}\n")
        out.write(f"   k-points           NKPTS =      1   number of bands    NBANDS=  {4 * n}\n")
        out.write(f"   number of dos      NEDOS =    301   number of ions     NIONS =    {n}\n")
        out.write("   total plane-waves  NPLWV =  512000\n")
        out.write(f"   NELECT =    {8.0 * n:.4f}    total number of electrons\n")
        out.write(f" number of electron    {8.0 * n:.7f} magnetization       0.0000000\n")
        out.write(f"   POTIM  = {potim}\n   NSW    = {nsw}\n   IBRION =      0\n")
    header = "fake MD\n           1\n" + "".join(f" {v[0]:12.6f}{v[1]:12.6f}{v[2]:12.6f}\n" for v in lattice)
    header += "".join(f"{s:>5}" for s in species) + "\n" + "".join(f"{c:6d}" for c in counts) + "\n"
    xd = open("XDATCAR", "w")
    xd.write(header)
    osz = open("OSZICAR", "w")
    print(f" running on fake VASP ({binary}), {n} atoms, NSW = {nsw}")
    done = 0
    for j in range(1, nsw + 1):
        t0 = time.monotonic()
        k = step0 + j - 1  # global index of the step being made
        for i in range(n):
            d = 0.0005 * math.sin(0.1 * k + i)
            coords[i] = [(c + d) % 1.0 for c in coords[i]]
        xd.write(f"Direct configuration={j:6d}\n")
        xd.write("".join(f"{c[0]:12.8f}{c[1]:12.8f}{c[2]:12.8f}\n" for c in coords))
        xd.flush()
        e = -1000.0 - 0.01 * math.sin(0.05 * (k + 1))
        osz.write(f"{j:6d} T=   300. E= {e:.8E} F= {e:.8E} E0= {e:.8E}  EK= 0.10000E+01 SP= 0.0E+00 SK= 0.0E+00\n")
        osz.flush()
        tmp = "CONTCAR.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"fake-step={step0 + j}\n           1\n")
            fh.write("".join(f" {v[0]:.10f} {v[1]:.10f} {v[2]:.10f}\n" for v in lattice))
            fh.write(" ".join(species) + "\n" + " ".join(str(c) for c in counts) + "\nDirect\n")
            fh.write("".join(f" {c[0]:.10f} {c[1]:.10f} {c[2]:.10f}\n" for c in coords))
            fh.write("\n" + "".join(" 0.0010000000 0.0000000000 0.0000000000\n" for _ in coords))
        os.replace(tmp, "CONTCAR")
        if pause:
            time.sleep(pause)
        if hold and (step0 + j == hold_at if hold_at else j == 1):
            held_until = time.monotonic() + 600
            while os.path.exists(hold) and time.monotonic() < held_until:
                time.sleep(0.1)
        if await_stop_at and step0 + j == await_stop_at:
            waited_until = time.monotonic() + 600
            while not stop_requested() and time.monotonic() < waited_until:
                time.sleep(0.05)
        dt = time.monotonic() - t0
        with open("OUTCAR", "a") as out:
            out.write(f"      LOOP+:  cpu time {dt:10.4f}: real time {dt:10.4f}\n")
        done = j
        if die_after and j >= die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if step0 + j in fail_at:
            print(" Error EDDDAV: Call to ZHEGV failed (fake)", flush=True)
            sys.exit(1)
        if stop_requested():
            print(f" fake VASP: LSTOP in STOPCAR, stopping after step {j} of {nsw}")
            break
    xd.close()
    osz.close()
    with open("OUTCAR", "a") as out:
        out.write(f" {done} ionic steps\n General timing and accounting informations for this job:\n")
        out.write("                  Total CPU time used (sec):        1.000\n")
        out.write("                            Elapsed time (sec):        1.000\n")
    print(" reached required accuracy (fake)")


def stop_requested() -> bool:
    """True when a STOPCAR asks for a clean stop after the current ionic step (LSTOP = .TRUE.)."""
    if not os.path.isfile("STOPCAR"):
        return False
    tags = read_incar("STOPCAR")
    return any(tags.get(k, "").strip(".").upper().startswith("T") for k in ("LSTOP", "LABORT"))


if __name__ == "__main__":
    main()
