"""Create the engine a module asked for from its settings: local, or the same engine on a server.

Every module runs its engine through :func:`nodsynth.engines.get_engine` and the request
dataclasses of :mod:`nodsynth.engines.base`, so local and remote runs are one code path.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from nodsynth.engines import Engine, get_engine
from nodsynth.errors import InputError
from nodsynth.jobs.protocol import import_target

from .settings import EngineSettings, validated

ENGINE_LABELS = {"classic": "Model-free", "nodmaisi": "NodMAISI (MAISI-v2 ControlNet)",
                 "hrldm": "HR-LDM (latent diffusion inpainting)"}
"""Engine name -> the label the modules show."""


def show_engine_labels(comboBox) -> None:
    """Show ``ENGINE_LABELS`` in place of the engine names the parameter-node connector put in ``comboBox``;
    it reads and writes the parameter by item index, so the parameter keeps the names."""
    for index in range(comboBox.count):
        name = comboBox.itemText(index)
        comboBox.setItemText(index, ENGINE_LABELS.get(name, name))


def local_engine_config(settings: EngineSettings) -> dict[str, Any]:
    """Keyword configuration of a local engine (only the options the user set)."""
    config: dict[str, Any] = {}
    if settings.weights_dir:
        config["weights_dir"] = settings.weights_dir
    if settings.device != "auto":
        config["device"] = settings.device
    if settings.network_config:
        config["config"] = settings.network_config
    if settings.allow_baseline_controlnet:
        config["allow_baseline_controlnet"] = True
    return config


def engine_from_settings(engine_name: str, settings: EngineSettings, **remote_options: Any) -> Engine:
    """The engine ``engine_name`` where ``settings`` say it runs (validated first).

    ``remote_options`` (``timeout_s``, ``retries``, ...) tune the ``RemoteEngine`` of a remote setting.
    """
    settings = validated(settings)
    if settings.remote:
        # the server's administrator chooses its weights and device: nothing of ours is sent
        return get_engine("remote", server_url=settings.server_url, token=settings.token, engine=engine_name,
                          **remote_options)
    return get_engine(engine_name, **local_engine_config(settings))


_WARM_ENGINES: dict[str, tuple[EngineSettings, Engine]] = {}
"""engine name -> (settings, engine) of the last engine a job made in this process (the job process
keeps it, networks loaded, for the next job with the same settings)."""


def warm_engine(engine_name: str, settings: EngineSettings) -> Engine:
    """The engine for these settings, reused from the previous job when its settings are the same."""
    kept = _WARM_ENGINES.get(engine_name)
    if kept is None or kept[0] != settings:
        _WARM_ENGINES.pop(engine_name, None)  # let the old networks go before loading new ones
        kept = (settings, engine_from_settings(engine_name, settings))
        _WARM_ENGINES[engine_name] = kept
    return kept[1]


def run_with_engine(target: str, engine_name: str, settings: EngineSettings, *args: Any,
                    progress: Optional[Callable[[float, str], None]] = None, cancel: Any = None) -> Any:
    """Job-process entry point: ``target(engine, *args, progress=, cancel=)`` (``target`` is
    ``"module:function"``) with the warm engine of ``engine_name`` where ``settings`` say it runs."""
    return import_target(target)(warm_engine(engine_name, settings), *args, progress=progress, cancel=cancel)


ENGINE_JOB = "NodMAISICommon.engines:run_with_engine"
"""The job target modules hand to their runner for engine work (see :func:`run_with_engine`)."""


def needs_upload_consent(settings: EngineSettings, consented_urls: set[str]) -> bool:
    """True when running would send patient data to a server the user has not yet agreed to.

    Every remote server counts, loopback ones too: an SSH tunnel makes a remote machine look
    like ``localhost``.
    """
    return settings.remote and validated(settings).server_url not in consented_urls


CONNECTION_TEST_TIMEOUT_S = 5.0


def connection_report(settings: EngineSettings) -> str:
    """The configured server's ``/v1/health`` (through ``RemoteEngine.health``) as text lines."""
    settings = validated(settings)
    if not settings.remote:
        raise InputError("the engine runs on this computer; choose 'Remote server' to test a connection")
    # a user clicking "Test connection" wants a quick answer: one retry, short timeout
    info = engine_from_settings("classic", settings, timeout_s=CONNECTION_TEST_TIMEOUT_S, retries=1,
                                backoff_s=0.2).health()
    return "\n".join(f"{key}: {value}" for key, value in info.items())


def baseline_controlnet_warning() -> str:
    """Why NodMAISI refuses MAISI-v2's baseline ControlNet unless allowed (the weights lookup's own words)."""
    from nodsynth.weights import ENGINE_WEIGHTS

    controlnet = next(spec for spec in ENGINE_WEIGHTS["nodmaisi"] if spec.role == "controlnet")
    return (f"Without the NodMAISI ControlNet, use {controlnet.fallback_names[0]} anyway. It "
            f"{controlnet.fallback_reason.split('. ')[0]}.")


LOW_GPU_MEMORY_MB = 8 * 1024
"""Below this much free GPU memory the full-size diffusion networks tend to run out of memory."""


def local_devices_text() -> str:
    """One line per device this computer offers (GPU name and free memory, or the CPU), with a hint
    to choose the CPU when a GPU is short of memory. Imports torch only when it is installed."""
    from nodsynth.server.devices import describe_device, resolve_devices

    lines = []
    for device in resolve_devices("auto"):
        info = describe_device(device)
        free = info.get("free_memory_mb")
        free_text = "free memory unknown" if free is None else f"{free / 1024:.1f} GB free"
        line = f"{device}: {info['kind']} {info['name']}, {free_text}"
        if info["kind"] == "GPU" and free is not None and free < LOW_GPU_MEMORY_MB:
            line += " (little memory: choose 'cpu' if the run fails)"
        lines.append(line)
    return "\n".join(lines)
