"""The command line: ``kserve-stack-runtime <sklearn|xgboost|lightgbm|custom> [flags]``.

The flags are KServe's model-server flags (and its sklearnserver / xgbserver / lgbserver ones), so
a KServe ClusterServingRuntime can start our images with its usual arguments.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kserve_stack_runtimes.model import Model
from kserve_stack_runtimes.repository import ModelFactory
from kserve_stack_runtimes.server import ModelServer
from kserve_stack_runtimes.settings import ServerSettings
from kserve_stack_runtimes.transformer import PROTOCOLS, Transformer
from kserve_stack_runtimes.transports import access

log = logging.getLogger("kserve_stack_runtimes.cli")

RUNTIMES = ("sklearn", "xgboost", "lightgbm", "custom")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value}")
    return value


def _server_flags(p: argparse.ArgumentParser) -> None:
    d = ServerSettings()
    g = p.add_argument_group("model server (KServe-compatible)")
    g.add_argument(
        "--model_name",
        default="model",
        help="Name the model is served under (default: %(default)s).",
    )
    g.add_argument(
        "--model_dir",
        default="/mnt/models",
        help=(
            "Directory (or file) the model is loaded from; each "
            "subdirectory is a further model the repository API can load "
            "by name (default: %(default)s)."
        ),
    )
    g.add_argument(
        "--http_port",
        type=_port,
        default=d.http_port,
        help=("Port of the REST listener: V1, V2, /metrics, /openapi.json (default: %(default)s)."),
    )
    g.add_argument(
        "--grpc_port",
        type=_port,
        default=d.grpc_port,
        help=(
            "Port of the gRPC listener: inference.GRPCInferenceService "
            "and grpc.health.v1 (default: %(default)s)."
        ),
    )
    g.add_argument(
        "--host", default=d.host, help="Address both listeners bind (default: %(default)s)."
    )
    g.add_argument(
        "--workers",
        type=_positive,
        default=d.workers,
        help=(
            "Worker processes; more than 1 share the ports with "
            "SO_REUSEPORT and sum their /metrics (default: %(default)s)."
        ),
    )
    g.add_argument(
        "--max_threads",
        type=_positive,
        default=d.max_threads,
        help=(
            "Accepted for KServe compatibility; has no effect: the gRPC server runs on the "
            "event loop (default: %(default)s)."
        ),
    )
    g.add_argument(
        "--max_asyncio_workers",
        type=_positive,
        default=None,
        help=(
            "Threads of the event loop's default executor, used by "
            "asyncio.to_thread in models (default: Python's choice)."
        ),
    )
    g.add_argument(
        "--enable_grpc",
        type=_bool,
        default=d.enable_grpc,
        help="Serve gRPC too: true or false (default: %(default)s).",
    )
    g.add_argument(
        "--enable_docs_url",
        type=_bool,
        default=d.enable_docs_url,
        help=(
            "Serve /docs, a page listing the endpoints of /openapi.json: "
            "true or false (default: %(default)s)."
        ),
    )
    g.add_argument(
        "--configure_logging",
        type=_bool,
        default=d.configure_logging,
        help=(
            "Set up logging (JSON lines on stderr, or --log_config_file):"
            " true or false (default: %(default)s)."
        ),
    )
    g.add_argument(
        "--log_config_file",
        default=None,
        help=(
            "A logging dictConfig file (JSON, or YAML by .yaml/.yml) used"
            " instead of the JSON-lines default."
        ),
    )
    g.add_argument(
        "--log_level",
        default=d.log_level,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Level of the server's logs (default: %(default)s).",
    )
    g.add_argument(
        "--access_log_format",
        default=None,
        help=(
            "%%-style format of access log lines (REST requests and gRPC "
            "calls) with keys client, method, path, status (HTTP), "
            "grpc_status (gRPC calls; - for REST), duration_ms, "
            'request_id, model, protocol, e.g. \'%%(client)s "%%(method)s %%(path)s" '
            "%%(status)s'; default: structured JSON fields."
        ),
    )
    g.add_argument(
        "--enable_access_log",
        type=_bool,
        default=d.access_log,
        help=(
            "Log one line per REST request and per gRPC call: true or false (default: %(default)s)."
        ),
    )
    g.add_argument(
        "--enable_latency_logging",
        type=_bool,
        default=d.enable_latency_logging,
        help=(
            "Log each request's preprocess / predict / postprocess "
            "latency: true or false (default: %(default)s)."
        ),
    )
    g.add_argument(
        "--max_request_body_bytes",
        type=_positive,
        default=d.max_request_body_bytes,
        help=(
            "Largest request body (and gRPC message) accepted; larger is "
            "answered 413 (default: %(default)s)."
        ),
    )
    g.add_argument(
        "--graceful_shutdown_timeout",
        type=float,
        default=d.graceful_shutdown_timeout,
        help=(
            "Seconds to drain in-flight requests after SIGTERM before "
            "exiting (default: %(default)s)."
        ),
    )
    t = p.add_argument_group("transformer mode")
    t.add_argument(
        "--predictor_host",
        default=None,
        help=("host:port of the predictor; when set, predict forwards there (transformer mode)."),
    )
    t.add_argument(
        "--predictor_protocol",
        default="v1",
        choices=PROTOCOLS,
        help=("Protocol to the predictor: v1 or v2 REST, or grpc-v2 (default: %(default)s)."),
    )
    t.add_argument(
        "--predictor_use_ssl",
        type=_bool,
        default=False,
        help=("Use https to reach a REST predictor: true or false (default: %(default)s)."),
    )
    t.add_argument(
        "--predictor_request_timeout_seconds",
        type=float,
        default=60.0,
        help=("Timeout of one request to the predictor (default: %(default)s)."),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kserve-stack-runtime",
        description="Serve a model over REST (KServe V1, Open Inference Protocol V2) and gRPC.",
    )
    sub = parser.add_subparsers(dest="runtime", required=True, metavar="RUNTIME")
    sk = sub.add_parser("sklearn", help="scikit-learn model (.joblib, .pkl, .pickle)")
    _server_flags(sk)
    sk.add_argument(
        "--predict_proba",
        type=_bool,
        default=None,
        help=(
            "Answer predict_proba instead of predict: true or false "
            "(default: the PREDICT_PROBA environment variable, else "
            "false)."
        ),
    )
    for name, helptext in (
        ("xgboost", "XGBoost Booster (.json, .ubj, .bst)"),
        ("lightgbm", "LightGBM Booster (.txt, .bst)"),
    ):
        sp = sub.add_parser(name, help=helptext)
        _server_flags(sp)
        sp.add_argument(
            "--nthread",
            type=_positive,
            default=1,
            help="Threads per prediction (default: %(default)s).",
        )
    cu = sub.add_parser(
        "custom",
        help=(
            "your own Model subclass (--model_class), or a pass-through "
            "transformer (--predictor_host)"
        ),
    )
    _server_flags(cu)
    cu.add_argument(
        "--model_class",
        default=None,
        help=(
            "The Model subclass to serve, as module:Class or "
            "path/to/file.py:Class; it is built as Class(model_name) "
            "(transformers: Class(model_name, predictor_host=..., "
            "predictor_protocol=...))."
        ),
    )
    return parser


def settings_from(args: argparse.Namespace) -> ServerSettings:
    if args.access_log_format:
        try:
            args.access_log_format % dict.fromkeys(access.FIELDS, "")
        except (KeyError, ValueError, TypeError) as exc:
            raise SystemExit(f"--access_log_format is not a valid format: {exc!r}") from None
    return ServerSettings(
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        enable_grpc=args.enable_grpc,
        workers=args.workers,
        max_threads=args.max_threads,
        max_asyncio_workers=args.max_asyncio_workers,
        enable_docs_url=args.enable_docs_url,
        log_config_file=args.log_config_file,
        configure_logging=args.configure_logging,
        access_log_format=args.access_log_format,
        access_log=args.enable_access_log,
        enable_latency_logging=args.enable_latency_logging,
        max_request_body_bytes=args.max_request_body_bytes,
        graceful_shutdown_timeout=args.graceful_shutdown_timeout,
        log_level=args.log_level,
    )


def load_class(spec: str) -> type[Model]:
    """``module:Class`` or ``path/to/file.py:Class`` to the class, checked to be a Model."""
    target, sep, cls_name = spec.rpartition(":")
    if not sep or not target or not cls_name:
        raise SystemExit(f"--model_class must be module:Class or file.py:Class, not {spec!r}")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise SystemExit(f"--model_class: no file {path}")
        mod_spec = importlib.util.spec_from_file_location(path.stem, path)
        if mod_spec is None or mod_spec.loader is None:
            raise SystemExit(f"--model_class: cannot import {path}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[path.stem] = module
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    cls = getattr(module, cls_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, Model)):
        raise SystemExit(f"--model_class: {spec} is not a kserve_stack_runtimes Model subclass")
    return cls


def _predict_proba(args: argparse.Namespace) -> bool:
    from kserve_stack_runtimes.predictors.sklearn import predict_proba_from_env  # noqa: PLC0415

    return args.predict_proba if args.predict_proba is not None else predict_proba_from_env()


def build_model(args: argparse.Namespace, name: str, model_dir: str) -> Model:
    """The (unloaded) model for the runtime chosen on the command line."""
    runtime = args.runtime
    if runtime == "sklearn":
        from kserve_stack_runtimes.predictors.sklearn import SKLearnModel  # noqa: PLC0415

        return SKLearnModel(name, model_dir, predict_proba=_predict_proba(args))
    if runtime == "xgboost":
        from kserve_stack_runtimes.predictors.xgboost import XGBoostModel  # noqa: PLC0415

        return XGBoostModel(name, model_dir, nthread=args.nthread)
    if runtime == "lightgbm":
        from kserve_stack_runtimes.predictors.lightgbm import LightGBMModel  # noqa: PLC0415

        return LightGBMModel(name, model_dir, nthread=args.nthread)
    transformer_kwargs: dict[str, Any] = {
        "predictor_protocol": args.predictor_protocol,
        "predictor_use_ssl": args.predictor_use_ssl,
        "predictor_request_timeout_seconds": args.predictor_request_timeout_seconds,
    }
    if args.model_class is None:
        if not args.predictor_host:
            raise SystemExit(
                "custom needs --model_class, or --predictor_host for a pass-through transformer"
            )
        return Transformer(name, args.predictor_host, **transformer_kwargs)
    cls = load_class(args.model_class)
    if issubclass(cls, Transformer):
        if not args.predictor_host:
            raise SystemExit(f"{cls.__name__} is a Transformer: it needs --predictor_host")
        return cls(name, args.predictor_host, **transformer_kwargs)
    return cls(name)


def _factory(args: argparse.Namespace) -> ModelFactory:
    def factory(name: str) -> Model | None:
        if name == args.model_name:
            return build_model(args, name, args.model_dir)
        sub = Path(args.model_dir) / name
        if args.runtime != "custom" and sub.is_dir():
            return build_model(args, name, str(sub))
        return None

    return factory


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    model = build_model(args, args.model_name, args.model_dir)
    ModelServer(settings, factory=_factory(args)).start([model])


def runtime_main(runtime: str) -> None:
    """Entry of ``python -m kserve_stack_runtimes.<runtime>`` (KServe-style module entry)."""
    main([runtime, *sys.argv[1:]])


if __name__ == "__main__":
    main()
