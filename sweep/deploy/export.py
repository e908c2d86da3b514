"""A chosen fleet as files a user deploys (SPEC §7 ``sweep export``): SkyPilot task YAMLs and vLLM commands.

One *replica group* is one allocation entry: ``replicas`` copies of one layout (offering, GPU, TP, PP).
Each group becomes one SkyPilot task with a SkyServe ``service`` section whose ``run:`` starts vLLM with
the layout's ``--tensor-parallel-size``/``--pipeline-parallel-size``, ``--max-num-seqs`` = the modelled
batch and ``--max-model-len`` = prompt + output tokens. How a layout maps onto nodes:

- a replica needs at most one node (TP×PP ≤ GPUs per node): one SkyServe replica per node; when a node
  holds k > 1 replicas (TP×PP·k ≤ GPUs per node) vLLM serves them as ``--data-parallel-size k`` behind
  one endpoint, and the service gets ⌈replicas / k⌉ replicas;
- a replica spans nodes (TP×PP > GPUs per node, a pipeline across nodes): ``num_nodes`` = nodes per
  replica and the Ray-based multi-node launch of SkyPilot's ``llm/vllm/vllm-multinode.sky.yaml``.

A mixed-GPU pipeline (stages on different offerings) cannot be one SkyPilot task (a task's nodes share
one ``resources``) nor one vLLM engine (one ``--tensor-parallel-size`` for every stage): it is written up
in ``NOT-EXPRESSIBLE.md`` and the rest of the fleet is exported.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.errors import InputError, Problem
from sweep.inputs.skypilot_catalog import sky_accelerator

if TYPE_CHECKING:
    from sweep.inputs.scenario import Scenario

PORT = 8000
# sweep model name (sweep/data/models.csv) → Hugging Face repository vLLM loads
HF_MODELS: dict[str, str] = {
    "llama-2-7b": "meta-llama/Llama-2-7b-chat-hf",
    "llama-2-13b": "meta-llama/Llama-2-13b-chat-hf",
    "llama-2-70b": "meta-llama/Llama-2-70b-chat-hf",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "llama-3.1-70b": "meta-llama/Llama-3.1-70B-Instruct",
    "llama-3.3-70b": "meta-llama/Llama-3.3-70B-Instruct",
    "llama-3.1-405b": "meta-llama/Llama-3.1-405B-Instruct",
    "mistral-7b": "mistralai/Mistral-7B-Instruct-v0.3",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "mixtral-8x22b": "mistralai/Mixtral-8x22B-Instruct-v0.1",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B-Instruct",
    "qwen2.5-72b": "Qwen/Qwen2.5-72B-Instruct",
}
# SkyPilot clouds whose instance-type names sweep's builtin offering names carry after "<provider>-"
# (aws-g5.xlarge → g5.xlarge; azure-ND96amsr_A100_v4 → Standard_ND96amsr_A100_v4); for the others an
# offering name is SkyPilot's only when it has that cloud's pattern (as `sweep catalog import skypilot` writes)
_SKY_INSTANCE = {
    "lambda": re.compile(r"^gpu_\d+x_\w+$"),
    "runpod": re.compile(r"^\d+x_[\w-]+_(SECURE|COMMUNITY)$"),
    "vast": re.compile(r"^\d+x-[\w.-]+-\d+-\d+$"),
}


@dataclass(frozen=True)
class Group:
    """One allocation entry: ``replicas`` copies of one layout, with what deployment needs to know."""

    index: int  # 1-based, in allocation order
    offering: str
    provider: str
    gpu: str
    tp: int
    pp: int
    replicas: int
    nodes: int  # nodes the solve attributed to this entry
    gpus_per_node: int
    batch: int  # modelled concurrent sequences per replica
    throughput_tok_s: float  # modelled output tokens/s per replica
    stages: tuple[dict, ...] = ()
    routed_rps: tuple[float, ...] = ()  # with a request mix: requests/s of each bucket the solve sends here

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp if not self.stages else sum(int(s["tp"]) for s in self.stages)

    @property
    def nodes_per_replica(self) -> int:
        return max(1, math.ceil(self.gpus_per_replica / self.gpus_per_node))

    @property
    def replicas_per_node(self) -> int:
        return max(1, self.gpus_per_node // self.gpus_per_replica) if self.nodes_per_replica == 1 else 1


@dataclass(frozen=True)
class Plan:
    """The fleet of one scenario under one method, ready to render."""

    scenario_id: str
    origin: str
    method: str
    model: str
    hf_model: str
    dtype: str
    prompt_tokens: int
    output_tokens: int
    spot: bool
    mem_fraction: float
    cost_per_hour: float
    throughput_tok_s: float
    cost_per_token: float
    groups: tuple[Group, ...] = field(default_factory=tuple)
    buckets: tuple[tuple[int, int, int], ...] = ()  # a request mix's (prompt, output, longest request) tokens

    @property
    def max_model_len(self) -> int:
        """Room for the longest request: prompt + output; with a mix, its longest request (a trace's)."""
        return max((m for _, _, m in self.buckets), default=self.prompt_tokens + self.output_tokens)

    @property
    def lengths(self) -> str:
        if self.buckets:
            return (f"a request mix of {len(self.buckets)} buckets (the longest request {self.max_model_len} tokens; "
                    "the solve routes each bucket to the groups of fleet.json's routed_rps)")
        return f"{self.prompt_tokens} prompt + {self.output_tokens} output tokens"


def hf_model_of(model: str, given: str | None) -> str:
    if given:
        return given
    if model in HF_MODELS:
        return HF_MODELS[model]
    raise InputError([Problem("model", f"no Hugging Face id known for {model!r} (pass --hf-model ORG/NAME; known: "
                                       f"{', '.join(sorted(HF_MODELS))})")])


# Vast: SkyPilot's instance types are "<n>x-<GPU>-32-65536" (catalogs/v7/vast/vms.csv, the snapshot the
# built-in vast offerings come from); its GPU token per sweep GPU
_VAST_GPU = {"H100-SXM": "H100_SXM", "H200": "H200", "L40S": "L40S", "A100-40GB": "A100_SXM4",
             "V100-16GB": "Tesla_V100", "A10": "A10"}
# sweep GPUs that share a SkyPilot accelerator name with another part (SkyPilot's "H100" is also the PCIe/NVL card)
AMBIGUOUS = {"H100-SXM", "H100-PCIe", "A100-80GB", "A100-80GB-PCIe", "V100-16GB", "V100-16GB-PCIe"}


def instance_type(offering: str, provider: str, gpu: str = "", gpus_per_node: int = 0) -> str | None:
    """SkyPilot's instance type of an offering, when its name carries it; None lets SkyPilot choose."""
    name = offering[len(provider) + 1:] if offering.startswith(f"{provider}-") else ""
    if not name:
        return None
    if provider in ("aws", "gcp"):
        return name
    if provider == "azure":
        return name if name.startswith("Standard_") else f"Standard_{name}"
    pattern = _SKY_INSTANCE.get(provider)
    if pattern is not None and pattern.match(name):
        return name
    if provider == "vast" and gpu in _VAST_GPU and re.fullmatch(rf"{gpus_per_node}x{re.escape(gpu)}", name):
        return f"{gpus_per_node}x-{_VAST_GPU[gpu]}-32-65536"  # the built-in vast-<n>x<GPU> names
    return None


# --------------------------------------------------------------------------- vLLM


def vllm_args(plan: Plan, g: Group, data_parallel: int = 1, ray: bool = False) -> list[str]:
    """``vllm serve`` arguments for one replica group (names as in vLLM's ``EngineArgs`` CLI)."""
    args = ["vllm", "serve", plan.hf_model, "--host", "0.0.0.0", "--port", str(PORT),
            "--tensor-parallel-size", str(g.tp), "--pipeline-parallel-size", str(g.pp)]
    if data_parallel > 1:
        args += ["--data-parallel-size", str(data_parallel)]
    args += ["--max-num-seqs", str(g.batch), "--max-model-len", str(plan.max_model_len),
             "--gpu-memory-utilization", f"{plan.mem_fraction:g}"]
    if plan.dtype == "fp8":
        args += ["--quantization", "fp8"]
    if ray:
        args += ["--distributed-executor-backend", "ray"]
    return args


def _cmd(args: list[str]) -> str:
    return " \\\n  ".join([" ".join(shlex.quote(a) for a in args[:3])] +
                          [" ".join(shlex.quote(a) for a in args[i:i + 2]) for i in range(3, len(args), 2)])


def _checkpoint_note(plan: Plan) -> list[str]:
    if plan.dtype == "int4":
        return ["int4: vLLM reads 4-bit weights from a quantized checkpoint (AWQ/GPTQ): point the model id at one; "
                "no --quantization flag is set here"]
    if plan.dtype == "fp4":
        return ["fp4: vLLM reads NVFP4 weights from a quantized checkpoint (e.g. ModelOpt's nvidia/*-FP4): point the "
                "model id at one; no --quantization flag is set here"]
    return []


RAY_START = """HEAD_IP=$(echo "$SKYPILOT_NODE_IPS" | head -n1)
if [ "$SKYPILOT_NODE_RANK" = "0" ]; then
  ray start --head --disable-usage-stats --port 6379
else
  sleep 5
  ray start --address "$HEAD_IP:6379" --disable-usage-stats
fi
sleep 10
export VLLM_HOST_IP=$(echo "$SKYPILOT_NODE_IPS" | sed -n "$((SKYPILOT_NODE_RANK + 1))p")
"""


def layout(g: Group) -> tuple[int, int, int]:
    """(service replicas, vLLM data-parallel size per service replica, nodes per service replica)."""
    if g.nodes_per_replica > 1:
        return g.replicas, 1, g.nodes_per_replica
    k = min(g.replicas_per_node, g.replicas)
    return math.ceil(g.replicas / k), k, 1


def skypilot_task(plan: Plan, g: Group) -> tuple[dict[str, Any], list[str]]:
    """One SkyPilot task (a dict in the task YAML's shape) and the comment lines that head its file."""
    service_replicas, dp, num_nodes = layout(g)
    acc = sky_accelerator(g.gpu, g.provider)
    resources: dict[str, Any] = {"cloud": g.provider, "accelerators": f"{acc}:{g.gpus_per_node}"}
    it = instance_type(g.offering, g.provider, g.gpu, g.gpus_per_node)
    if it:
        resources["instance_type"] = it
    resources["use_spot"] = plan.spot
    resources["ports"] = PORT
    serve = vllm_args(plan, g, dp, ray=num_nodes > 1)
    if num_nodes > 1:
        run = RAY_START + 'if [ "$SKYPILOT_NODE_RANK" = "0" ]; then\n  ' + _cmd(serve).replace("\n", "\n  ") + \
            "\nelse\n  sleep infinity\nfi\n"
    else:
        run = _cmd(serve) + "\n"
    task: dict[str, Any] = {
        "name": f"sweep-{plan.scenario_id[:8]}-g{g.index}",
        "resources": resources,
        "num_nodes": num_nodes,
        "envs": {"HF_HUB_ENABLE_HF_TRANSFER": "1"},
        "secrets": {"HF_TOKEN": None},
        "setup": "pip install 'vllm>=0.9' hf_transfer" + (" 'ray[default]'" if num_nodes > 1 else "") + "\n",
        "run": run,
        "service": {"readiness_probe": {"path": "/health", "initial_delay_seconds": 1800},
                    "replicas": service_replicas},
    }
    head = [f"sweep export: scenario {plan.scenario_id}{f' ({plan.origin})' if plan.origin else ''}, "
            f"method {plan.method}, replica group {g.index} of {len(plan.groups)}",
            f"{g.replicas} × {plan.model} on {g.offering} ({g.gpu}, {g.gpus_per_node} per node): tp={g.tp} pp={g.pp}, "
            f"modelled batch {g.batch}, {g.throughput_tok_s:,.0f} tok/s per replica",
            f"deploy: sky serve up -n sweep-{plan.scenario_id[:8]}-g{g.index} THIS.yaml --secret HF_TOKEN"]
    if it is None:
        head.append(f"instance_type: left to SkyPilot ({g.offering!r} does not name a {g.provider} instance type); "
                    f"it picks a {g.provider} instance with {acc}:{g.gpus_per_node}")
        if g.gpu in AMBIGUOUS:
            head.append(f"caution: SkyPilot's {acc!r} also names other {acc} parts than {g.gpu}; set instance_type "
                        f"to a {g.gpu} instance of {g.provider} (see `sky show-gpus {acc} --cloud {g.provider}`)")
    if dp > 1:
        extra = service_replicas * dp - g.replicas
        head.append(f"{dp} replicas per node share one endpoint (vLLM --data-parallel-size {dp}): "
                    f"{service_replicas} SkyServe replica{'s' if service_replicas != 1 else ''} = "
                    f"{service_replicas * dp} model replicas"
                    + (f" ({extra} more than the solve's {g.replicas}: the spare GPUs of a rented node)" if extra else ""))
    if num_nodes > 1:
        head.append(f"the pipeline spans {num_nodes} nodes: Ray cluster per replica, vLLM on the head node "
                    "(as SkyPilot's llm/vllm/vllm-multinode.sky.yaml)")
    head += _checkpoint_note(plan)
    return task, head


def not_expressible(plan: Plan, g: Group) -> str:
    stages = ", ".join(f"{s['offering']} ({s['gpu']}) tp={s['tp']} layers {s['first_layer']}-{s['last_layer']}"
                       for s in g.stages)
    return (f"## Replica group {g.index}: mixed-GPU pipeline, {g.replicas} replica(s)\n\n"
            f"Stages: {stages}.\n\n"
            "- SkyPilot: one task's nodes share one `resources` (`any_of`/`ordered` are alternatives, not per-node "
            "types), so a pipeline whose stages run on different instance types is not one task; two tasks are "
            "two clusters that vLLM cannot join into one engine.\n"
            "- vLLM: one `--tensor-parallel-size` for every stage; uneven layer splits need "
            "`VLLM_PP_LAYER_PARTITION`, but per-stage GPU types and TP widths are not expressible.\n\n"
            f"Not exported: deploy it by hand (e.g. one Ray cluster over both node types with a custom placement), "
            f"or re-solve with `perf.mixed = false`. The other groups' files are complete.\n")


# --------------------------------------------------------------------------- files


def _yaml_text(task: dict[str, Any], head: list[str]) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, s: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)

    _Dumper.add_representer(str, _str)
    body = yaml.dump(task, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
    return "".join(f"# {h}\n" for h in head) + body


def vllm_script(plan: Plan) -> str:
    """A shell script: ``bash launch-vllm.sh GROUP`` runs that group's vLLM server on this node."""
    lines = ["#!/usr/bin/env bash",
             f"# sweep export: vLLM launch commands for scenario {plan.scenario_id}, method {plan.method}",
             f"# {plan.model} ({plan.hf_model}), {plan.dtype}, {plan.lengths}; "
             f"fleet {plan.cost_per_hour:,.2f} $/h, {plan.throughput_tok_s:,.0f} tok/s",
             "# usage: bash launch-vllm.sh GROUP            (on every node of a one-node replica)",
             "#        bash launch-vllm.sh GROUP head|worker HEAD_IP   (a replica across nodes: Ray first)",
             *[f"# note: {n}" for n in _checkpoint_note(plan)],
             "set -euo pipefail", 'group="${1:?replica group number}"', 'role="${2:-head}"', 'head_ip="${3:-}"',
             'case "$group" in']
    for g in plan.groups:
        lines.append(f"  {g.index})  # {g.replicas} × {g.offering} ({g.gpu}), tp={g.tp} pp={g.pp}, batch {g.batch}")
        if g.stages:
            lines += [f"    echo 'group {g.index}: a mixed-GPU pipeline is not expressible as vLLM flags "
                      "(see NOT-EXPRESSIBLE.md)' >&2", "    exit 2 ;;"]
            continue
        _, dp, num_nodes = layout(g)
        if num_nodes > 1:
            lines += [f"    # run on each of the {num_nodes} nodes of every replica: head first, then workers",
                      '    if [ "$role" = "head" ]; then ray start --head --port 6379 --disable-usage-stats; '
                      'else ray start --address "$head_ip:6379" --disable-usage-stats; exec sleep infinity; fi']
        else:
            lines.append(f"    # on each of the {layout(g)[0]} nodes" + (f" ({dp} replicas per node)" if dp > 1 else ""))
        lines += ["    exec " + _cmd(vllm_args(plan, g, dp, ray=num_nodes > 1)).replace("\n", "\n    ") + " ;;"]
    lines += ['  *) echo "unknown group $group (1-' + str(len(plan.groups)) + ')" >&2; exit 2 ;;', "esac", ""]
    return "\n".join(lines)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def render(plan: Plan, fmt: str) -> tuple[dict[str, str], list[str]]:
    """File name → text for ``fmt`` (``skypilot`` or ``vllm``), and notes for stderr."""
    files: dict[str, str] = {}
    notes: list[str] = []
    mixed = [g for g in plan.groups if g.stages]
    if mixed:
        files["NOT-EXPRESSIBLE.md"] = (f"# What sweep export could not express (scenario {plan.scenario_id}, "
                                       f"{plan.method})\n\n" + "\n".join(not_expressible(plan, g) for g in mixed))
        notes += [f"note: replica group {g.index} is a mixed-GPU pipeline: not exported (see NOT-EXPRESSIBLE.md)"
                  for g in mixed]
    if fmt == "skypilot":
        for g in plan.groups:
            if g.stages:
                continue
            task, head = skypilot_task(plan, g)
            files[f"{g.index:02d}-{_safe(g.offering)}-tp{g.tp}-pp{g.pp}.yaml"] = _yaml_text(task, head)
    else:
        files["launch-vllm.sh"] = vllm_script(plan)
    files["fleet.json"] = json.dumps({
        "scenario_id": plan.scenario_id, "method": plan.method, "model": plan.model, "hf_model": plan.hf_model,
        "cost_per_hour": plan.cost_per_hour, "throughput_tok_s": plan.throughput_tok_s,
        "cost_per_token": plan.cost_per_token, "max_model_len": plan.max_model_len,
        "groups": [{"group": g.index, "offering": g.offering, "gpu": g.gpu, "tp": g.tp, "pp": g.pp,
                    "replicas": g.replicas, "nodes": g.nodes, "batch": g.batch,
                    "throughput_tok_s_per_replica": g.throughput_tok_s,
                    "service_replicas": layout(g)[0], "data_parallel": layout(g)[1], "num_nodes": layout(g)[2],
                    **({"stages": list(g.stages)} if g.stages else {}),
                    **({"routed_rps": list(g.routed_rps)} if g.routed_rps else {})} for g in plan.groups],
        **({"buckets": [{"prompt_tokens": p, "output_tokens": o, "longest_tokens": m} for p, o, m in plan.buckets]}
           if plan.buckets else {}),
    }, indent=2) + "\n"
    return files, notes


def write_files(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write every file atomically (temporary name, then rename); the folder is created if missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        dest = out_dir / name
        tmp = out_dir / f".{name}.tmp{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        if name.endswith(".sh"):
            tmp.chmod(0o755)
        os.replace(tmp, dest)
        written.append(dest)
    return written


# --------------------------------------------------------------------------- building a plan


def plan_from_solve(prep: Any, result: Any, hf_model: str | None = None) -> Plan:
    """The plan of a method's answer on a prepared scenario (``sweep.solve.prepare.Prepared``, ``MethodResult``)."""
    from sweep.solve.result import allocation

    sc = prep.scenario
    fleet = result.fleet
    alloc = allocation(prep.instance, fleet)
    groups = []
    for i, (a, (c, _n)) in enumerate(zip(alloc, fleet.replicas, strict=True), start=1):
        cand = prep.instance.candidates[c]
        groups.append(_group(i, a, sc, cand.batch, float(cand.throughput_tok_s)))
    return _plan(sc, prep.scenario_id, result.method, fleet.cost_per_hour, float(fleet.throughput_tok_s),
                 float(fleet.cost_per_token or 0.0), groups, hf_model)


def _group(i: int, a: dict, sc: Scenario, batch: int | None, thr: float) -> Group:
    o = sc.catalog.offerings.get(a["offering"], None)
    stages = tuple(dict(s) for s in (a.get("stages") or ()))
    return Group(i, a["offering"], o.provider if o else "", a["gpu"], int(a["tp"]), int(a["pp"]), int(a["replicas"]),
                 int(a["nodes"]), o.gpus_per_node if o else 1,
                 # a profile without a batch column: the engine's largest batch (perf.max_batch)
                 int(batch) if batch is not None else int(sc.perf.max_batch), thr, stages,
                 tuple(a.get("routed_rps") or ()))


def _plan(sc: Scenario, sid: str, method: str, cph: float, thr: float, cpt: float, groups: list[Group],
          hf_model: str | None) -> Plan:
    w = sc.workload
    return Plan(sid, sc.origin, method, sc.model.model, hf_model_of(sc.model.model, hf_model), sc.perf.dtype,
                int(w.prompt_tokens), int(w.output_tokens), sc.spot,
                float(sc.perf.mem_fraction), cph, thr, cpt, tuple(groups),
                tuple((b.prompt_tokens, b.output_tokens, b.max_tokens) for b in sc.mix))


def scenario_of_results(res: Any, sid: str) -> Any:
    """Rebuild a dataset's scenario from its stored parameters (catalog paths relative to the job's folder)."""
    from sweep.inputs.scenario import SCHEMA, build_scenario
    from sweep.results.schema import param_column

    rows = res.sql(f"SELECT * FROM scenarios WHERE scenario_id = '{sid}'").to_dict("records")
    if not rows:
        raise InputError([Problem("--scenario", f"{sid}: not in {res.label}'s scenarios table")])
    row = rows[0]
    raw: dict[str, Any] = {}
    for key, spec in SCHEMA.items():
        v = row.get(param_column(key))
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if spec.kind.startswith(("list", "map")) and isinstance(v, str):
            v = json.loads(v)
        raw[key] = v
    job_file = str((res.manifest().get("spec") or {}).get("file") or "")
    base = Path(job_file).parent if job_file else Path(".")
    sc = build_scenario(raw, base, str(row.get("origin") or ""))
    if sc.scenario_id != sid:
        raise InputError([Problem("--scenario", f"{sid}: its catalog or profile files have changed since the sweep "
                                                f"(the rebuilt scenario is {sc.scenario_id}); export from the "
                                                "scenario file instead")])
    return sc


def plan_from_results(res: Any, sid: str, method: str, hf_model: str | None = None) -> Plan:
    """The plan of a dataset's best row for (scenario, method); batches from the rebuilt scenario's candidates."""
    from sweep.fleet.candidates import build_candidates

    best = res.best(f"scenario_id = '{sid}' AND method = '{method}'")
    if best.empty:
        have = sorted(set(res.best(f"scenario_id = '{sid}'")["method"]))
        raise InputError([Problem("--method", f"{method}: no fleet for scenario {sid} in {res.label} "
                                              f"(methods with one: {', '.join(have) or 'none'})")])
    row = best.iloc[0]
    sc = scenario_of_results(res, sid)
    table = build_candidates(sc)
    by_layout = {(c.offering, c.tp, c.pp, tuple((s.offering, s.tp, s.first_layer) for s in c.stages)): c
                 for c in table.kept}
    groups = []
    for i, a in enumerate(list(row["allocation"]), start=1):
        key = (a["offering"], int(a["tp"]), int(a["pp"]),
               tuple((s["offering"], int(s["tp"]), int(s["first_layer"])) for s in (a.get("stages") or ())))
        cand = by_layout.get(key)
        if cand is None:
            raise InputError([Problem("--scenario", f"{sid}: layout {a['offering']} tp={a['tp']} pp={a['pp']} is not "
                                                    "a candidate of the rebuilt scenario")])
        groups.append(_group(i, a, sc, cand.batch, float(cand.throughput_tok_s)))
    return _plan(sc, sid, method, float(row["cost_per_hour"]), float(row["throughput_tok_s"]),
                 float(row["cost_per_token"]), groups, hf_model)
