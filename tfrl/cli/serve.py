"""`tfrl serve`: a server with TensorFlow Serving's REST and gRPC APIs."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]

EPILOG = """\
examples:
  tfrl serve --model_name cartpole_dqn --model_base_path saved_models/cartpole_dqn
  tfrl serve --model_config_file models.config --rest_api_port 8501 --port 8500
  tfrl serve --model_base_path saved_models/cartpole_dqn \\
      --monitoring_config_file monitoring.config
  curl -d '{"instances": [[0.0, 0.1, 0.0, -0.1]]}' \\
      http://127.0.0.1:8501/v1/models/cartpole_dqn:predict

As with tensorflow_model_server, --port is the gRPC port (PredictionService,
ModelService) and --rest_api_port the REST port. A monitoring.config holding
  prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }
serves Prometheus metrics on the REST port at that path.

The same exports and models.config work with TensorFlow Serving itself
(see docs/serving.md). New integer version directories under a base path are
loaded while serving; the latest is served once loaded. A version that fails
to load (e.g. still being copied) is retried as soon as its files change, and
otherwise every --load_retry_interval_micros, up to --max_num_load_retries times.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve exports with TensorFlow Serving's REST and gRPC APIs",
        description=(
            "Serve SavedModel exports over TensorFlow Serving's REST API (GET "
            "/v1/models/<name>[/metadata], POST /v1/models/<name>[/versions/<N>]:predict) "
            "and gRPC API (PredictionService, ModelService). "
            "Flag names follow tensorflow_model_server's."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_argument_group("what to serve (a name/base path pair, or a models.config)")
    what.add_argument("--model_name", help="name in URLs (default 'default', as TF Serving)")
    what.add_argument(
        "--model_base_path", help="directory of integer versions, e.g. saved_models/cartpole_dqn"
    )
    what.add_argument(
        "--model_config_file", help="TF Serving models.config (text-format ModelServerConfig)"
    )
    net = p.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    net.add_argument(
        "--rest_api_port",
        type=int,
        default=8501,
        help="REST port (default 8501; 0 picks a free one)",
    )
    net.add_argument(
        "--port",
        type=int,
        default=8500,
        help="gRPC port, as tensorflow_model_server (default 8500; 0 picks a free one)",
    )
    net.add_argument(
        "--max_body_bytes",
        type=int,
        default=16 * 1024 * 1024,
        help="largest REST body or gRPC message; larger gets HTTP 413 / RESOURCE_EXHAUSTED "
        "(default 16 MiB)",
    )
    net.add_argument(
        "--max_request_rows",
        type=int,
        default=100_000,
        help="most examples in one request; more gets HTTP 400 (default 100000)",
    )
    net.add_argument(
        "--monitoring_config_file",
        help='TF Serving monitoring config: prometheus_config { enable: true, path: "..." }',
    )
    tuning = p.add_argument_group("versions and batching")
    tuning.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between polls of the base paths for new versions; 0 polls once, "
        "at start (default 1)",
    )
    tuning.add_argument(
        "--max_num_load_retries",
        type=int,
        default=5,
        help="retries of a version that failed to load while its files stay the same; "
        "changed files are retried on the next poll (default 5)",
    )
    tuning.add_argument(
        "--load_retry_interval_micros",
        type=int,
        default=60_000_000,
        help="wait between those retries (default 60000000, one minute)",
    )
    tuning.add_argument(
        "--max_batch_size",
        type=int,
        default=64,
        help="most examples per model call when batching concurrent requests (default 64)",
    )
    tuning.add_argument(
        "--batch_timeout_micros",
        type=int,
        default=0,
        help="wait up to this long to fill a batch when the model is idle (default 0)",
    )
    tuning.add_argument(
        "--max_enqueued_batches",
        type=int,
        default=1024,
        help="most queued requests per signature; beyond, HTTP 429 (default 1024)",
    )
    tuning.add_argument("--no_batching", action="store_true", help="run every request on its own")
    tuning.add_argument(
        "--num_threads", type=int, default=2, help="threads running model calls (default 2)"
    )
    p.set_defaults(func=run, precheck=check_ports)


def check_ports(args: argparse.Namespace) -> None:
    """Fails at once, in one line, if a port cannot be opened: run before TensorFlow
    is imported and models load."""
    from tfrl.ports import check_ports as check

    check(args.host, args.rest_api_port, args.port)


def run(args: argparse.Namespace) -> int:
    import logging

    from tfrl.serving import BatchingOptions, Server, ServerOptions, model_configs
    from tfrl.serving.config import load_monitoring_config_file

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log = logging.getLogger("tfrl.serving")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    models = model_configs(args.model_name, args.model_base_path, args.model_config_file)
    metrics_path = None
    if args.monitoring_config_file:
        metrics_path = load_monitoring_config_file(args.monitoring_config_file)
    options = ServerOptions(
        host=args.host,
        port=args.rest_api_port,
        grpc_port=args.port,
        poll_interval=args.file_system_poll_wait_seconds,
        max_body_bytes=args.max_body_bytes,
        max_request_rows=args.max_request_rows,
        metrics_path=metrics_path,
        num_threads=args.num_threads,
        max_num_load_retries=args.max_num_load_retries,
        load_retry_interval_seconds=args.load_retry_interval_micros / 1e6,
        batching=BatchingOptions(
            max_batch_size=args.max_batch_size,
            timeout=args.batch_timeout_micros / 1e6,
            max_enqueued=args.max_enqueued_batches,
            enabled=not args.no_batching,
        ),
    )
    for m in models:
        print(f"Model {m.name!r} from {m.base_path}")
    Server(models, options).serve_forever()
    print("tfrl serve: stopped.")
    return 0
