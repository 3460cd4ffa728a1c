"""What the deployment checks share: rendering the Kustomize overlays, reading what a pod of the
rendered manifests would get (its config file, its environment, its ports and probes), and running
the real binaries the way such a pod would, on free local ports and the test's Redis, MariaDB and
Kafka.

Everything here fails with a `Failure` whose message says what is wrong and where.
"""

import base64
import math
import os
import pathlib
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from process_ties import dies_with_this_process  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "prod"]
TOOLS = pathlib.Path(os.environ.get("IM_DEPLOY_TOOLS", ROOT / ".cache" / "deploy-tools"))

# Secrets the operator creates before applying an overlay that does not generate them
# (deploy/k8s/README.md, "Secrets"): a reference to anything else is a mistake.
EXTERNAL_SECRETS = {"im-secrets": {"token-secret", "mysql-password", "redis-password",
                                  "kafka-password", "admin-api-key"}}

# The source files whose Config lookups define every key a binary reads.
OPTION_SOURCES = {
    "im-gateway": ROOT / "gateway" / "gateway_options.cc",
    "im-logic": ROOT / "logic" / "logic_options.cc",
}

TEST_TOKEN_SECRET = "deploy-test-secret-0123456789"


class Failure(Exception):
    """A check failed; the message says which and why."""




def kustomize_binary():
    path = TOOLS / "bin" / "kustomize"
    if not path.exists():
        raise Failure(f"kustomize not found at {path}: run scripts/install-deps.sh "
                      "(or deploy/k8s/fetch-tools.sh)")
    return path


def render(directory):
    """Runs `kustomize build` on a kustomization directory; returns (yaml text, objects)."""
    result = subprocess.run([str(kustomize_binary()), "build", str(directory)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise Failure(f"kustomize build {directory} failed:\n{result.stderr}")
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    if not objects:
        raise Failure(f"kustomize build {directory} rendered nothing")
    return result.stdout, objects


def config_keys(binary):
    """Every config key `binary` reads, from its options parser (config.GetXxx("a.b", ...))."""
    source = OPTION_SOURCES[binary].read_text()
    keys = set(re.findall(r'\.Get\w*\(\s*"([a-z0-9_]+(?:\.[a-z0-9_]+)*)"', source))
    if not keys:
        raise Failure(f"found no config keys in {OPTION_SOURCES[binary]}")
    return keys


def env_name(key):
    """The environment variable overriding `key` (common/config.cc, Config::EnvName)."""
    return "IM_" + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def flatten(tree, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": "1"}: the dotted keys of a YAML config and their values."""
    flat = {}
    for key, value in (tree or {}).items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = "" if value is None else str(value)
    return flat


def split_host_port(address, what):
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise Failure(f"{what}: '{address}' is not host:port")
    return host, int(port)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=3.0):
    """(status, body) of GET http://127.0.0.1:port/path; status None when nothing answered."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        return None, str(getattr(error, "reason", error))


def labels_match(selector, labels):
    """Whether a matchLabels selector (or a Service's plain selector) selects `labels`."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


class Manifests:
    """One rendered overlay: deploy/k8s/overlays/<overlay>, or any kustomization directory."""

    def __init__(self, overlay, directory=None):
        self.overlay = overlay
        self.text, self.objects = render(directory or K8S / "overlays" / overlay)

    def of_kind(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind, name):
        for o in self.of_kind(kind):
            if o["metadata"]["name"] == name:
                return o
        return None

    def workloads(self):
        return self.of_kind("Deployment") + self.of_kind("StatefulSet")

    def workloads_selected_by(self, selector):
        return [w for w in self.workloads()
                if labels_match(selector, w["spec"]["template"]["metadata"].get("labels", {}))]

    def pods(self):
        """A Pod for each container of each workload, as the cluster would create it."""
        return [Pod(self, w, c) for w in self.workloads()
                for c in w["spec"]["template"]["spec"]["containers"]]


class Pod:
    """A container of a workload, as one of its pods would run it."""

    def __init__(self, manifests, workload, container):
        self.manifests = manifests
        self.workload = workload
        self.container = container
        self.spec = workload["spec"]["template"]["spec"]
        self.name = f'{workload["kind"]}/{workload["metadata"]["name"]}'
        self.namespace = workload["metadata"].get("namespace", "default")
        image = container["image"].rsplit("/", 1)[-1].split("@")[0].split(":")[0]
        if image not in OPTION_SOURCES:
            raise Failure(f"{self.name}: image {container['image']} is neither im-gateway nor "
                          "im-logic")
        self.binary = image
        if workload["kind"] == "StatefulSet":
            self.pod_name = f'{workload["metadata"]["name"]}-0'
            self.pod_labels = dict(workload["spec"]["template"]["metadata"].get("labels", {}))
            self.pod_labels["apps.kubernetes.io/pod-index"] = "0"
        else:
            self.pod_name = f'{workload["metadata"]["name"]}-5d9c7b8f4-x2x7k'
            self.pod_labels = dict(workload["spec"]["template"]["metadata"].get("labels", {}))

    def where(self):
        return f"{self.manifests.overlay}: {self.name} container {self.container['name']}"

    def config_file(self):
        """(path in the pod, YAML text) of the file given to --config, from its ConfigMap."""
        args = list(self.container.get("command", [])) + list(self.container.get("args", []))
        if "--config" not in args or args.index("--config") + 1 >= len(args):
            raise Failure(f"{self.where()}: no --config FILE in its command or args")
        path = args[args.index("--config") + 1]
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        for mount in self.container.get("volumeMounts", []):
            prefix = mount["mountPath"].rstrip("/") + "/"
            if not path.startswith(prefix):
                continue
            volume = volumes.get(mount["name"])
            if volume is None or "configMap" not in volume:
                raise Failure(f"{self.where()}: {path} is on volume {mount['name']}, which is "
                              "not a ConfigMap")
            name = volume["configMap"]["name"]
            config_map = self.manifests.get("ConfigMap", name)
            if config_map is None:
                raise Failure(f"{self.where()}: ConfigMap {name} (holding {path}) is not in the "
                              "rendered manifests")
            key = path[len(prefix):]
            for item in volume["configMap"].get("items", []):
                if item["path"] == key:
                    key = item["key"]
            if key not in config_map.get("data", {}):
                raise Failure(f"{self.where()}: ConfigMap {name} has no key {key} for {path}")
            return path, config_map["data"][key]
        raise Failure(f"{self.where()}: no volume is mounted where {path} is")

    def _field(self, field_path):
        fields = {
            "metadata.name": self.pod_name,
            "metadata.namespace": self.namespace,
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
            "spec.nodeName": "node-1",
            "spec.serviceAccountName": self.spec.get("serviceAccountName", "default"),
        }
        if field_path in fields:
            return fields[field_path]
        label = re.fullmatch(r"metadata\.labels\['([^']+)'\]", field_path)
        if label:
            # Kubernetes gives an empty value for a label the pod does not have.
            return self.pod_labels.get(label.group(1), "")
        raise Failure(f"{self.where()}: fieldRef {field_path} is not simulated by this test")

    def _resource(self, ref):
        container = self.container
        if ref.get("containerName", container["name"]) != container["name"]:
            raise Failure(f"{self.where()}: resourceFieldRef names container "
                          f"{ref['containerName']}")
        kind, _, resource = ref["resource"].partition(".")
        value = container.get("resources", {}).get(kind, {}).get(resource)
        if value is None:
            raise Failure(f"{self.where()}: resourceFieldRef {ref['resource']} is not set")
        if resource != "cpu":
            raise Failure(f"{self.where()}: resourceFieldRef {ref['resource']} not simulated")
        cores = float(value[:-1]) / 1000 if str(value).endswith("m") else float(value)
        divisor = str(ref.get("divisor", "1"))
        per = float(divisor[:-1]) / 1000 if divisor.endswith("m") else float(divisor)
        return str(math.ceil(cores / per))

    def _secret(self, ref):
        name, key = ref["name"], ref["key"]
        secret = self.manifests.get("Secret", name)
        if secret is not None:
            if key in secret.get("data", {}):
                return base64.b64decode(secret["data"][key]).decode()
            if key in secret.get("stringData", {}):
                return secret["stringData"][key]
            if ref.get("optional"):
                return None  # the kubelet leaves the variable unset
            raise Failure(f"{self.where()}: Secret {name} has no key {key}")
        if key in EXTERNAL_SECRETS.get(name, set()):
            return "created-by-the-operator-" + key
        raise Failure(f"{self.where()}: Secret {name} key {key} is neither rendered nor one the "
                      f"README has operators create ({EXTERNAL_SECRETS})")

    def environment(self):
        """The container's environment as the kubelet would build it (envFrom, then env in
        order, with $(VAR) references to earlier variables expanded)."""
        env = {}
        for source in self.container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                name = source["configMapRef"]["name"]
                config_map = self.manifests.get("ConfigMap", name)
                if config_map is None:
                    raise Failure(f"{self.where()}: envFrom ConfigMap {name} is not rendered")
                for key, value in config_map.get("data", {}).items():
                    env[prefix + key] = value
            else:
                raise Failure(f"{self.where()}: envFrom {source} is not simulated by this test")
        for var in self.container.get("env", []):
            if "value" in var:
                value = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                               lambda m: env.get(m.group(1), m.group(0)), str(var["value"]))
            elif "fieldRef" in var["valueFrom"]:
                value = self._field(var["valueFrom"]["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in var["valueFrom"]:
                value = self._resource(var["valueFrom"]["resourceFieldRef"])
            elif "secretKeyRef" in var["valueFrom"]:
                value = self._secret(var["valueFrom"]["secretKeyRef"])
            elif "configMapKeyRef" in var["valueFrom"]:
                ref = var["valueFrom"]["configMapKeyRef"]
                config_map = self.manifests.get("ConfigMap", ref["name"])
                if config_map is None or ref["key"] not in config_map.get("data", {}):
                    raise Failure(f"{self.where()}: ConfigMap {ref['name']} key {ref['key']} "
                                  "is not rendered")
                value = config_map["data"][ref["key"]]
            else:
                raise Failure(f"{self.where()}: env {var['name']} is not simulated by this test")
            if value is not None:
                env[var["name"]] = value
        return env

    def effective_config(self, strict=False):
        """(dotted key -> value) the binary will run with: its config file, then IM_* variables.
        `strict`: fail on a key or an IM_* variable the binary does not read (a typo that the
        binary would ignore silently, running on the default); otherwise they are left out."""
        path, text = self.config_file()
        try:
            tree = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise Failure(f"{self.where()}: {path} is not YAML: {error}") from error
        config = flatten(tree)
        known = config_keys(self.binary)
        unknown = sorted(set(config) - known)
        for key in unknown:
            del config[key]
        if unknown and strict:
            raise Failure(f"{self.where()}: {path} sets keys {self.binary} does not read: "
                          f"{unknown} (see {OPTION_SOURCES[self.binary].relative_to(ROOT)})")
        by_env = {env_name(k): k for k in known}
        # The binary's own rule (common/config.h, CheckUnknownKeys): IM_<SECTION>_* variables of
        # the sections its keys are in are its settings; other IM_* variables belong to tools.
        sections = {env_name(k.split(".")[0]) + "_" for k in known}
        for name, value in self.environment().items():
            if any(name.startswith(s) for s in sections):
                if name not in by_env:
                    if not strict:
                        continue
                    raise Failure(f"{self.where()}: environment variable {name} overrides no "
                                  f"key {self.binary} reads")
                config[by_env[name]] = value
        return config

    def container_ports(self):
        """{port number: name or None} of the container's declared ports."""
        return {p["containerPort"]: p.get("name") for p in self.container.get("ports", [])}

    def resolve_port(self, port, what):
        """A probe's or a Service's port (a name or a number) as a container port number."""
        if isinstance(port, int):
            return port
        if isinstance(port, str) and port.isdigit():
            return int(port)
        for p in self.container.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
        raise Failure(f"{self.where()}: {what} names port '{port}', which the container does "
                      "not declare")


def listen_keys(config):
    """The config keys a binary binds a socket for (gateway.listen, logic.metrics_listen, ...)."""
    return sorted(k for k in config if re.search(r"(^|[._])listen$", k.rsplit(".", 1)[-1]))


class Process:
    """A binary started the way a pod would run it, on local ports."""

    def __init__(self, argv, env, name):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
        self.popen = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=self.log,
                                      text=True, preexec_fn=dies_with_this_process())

    def wait_for_line(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.popen.stdout], [], [], 0.2)
            if ready:
                line = self.popen.stdout.readline()
                if line.startswith(prefix):
                    return line.strip()
                if not line and self.popen.poll() is not None:
                    break
        raise Failure(f"{self.name} did not print '{prefix}' within {timeout} s "
                      f"(exit status {self.popen.poll()}); its log:\n{self.log_tail()}")

    def log_tail(self, lines=30):
        return "".join(pathlib.Path(self.log.name).read_text(errors="replace")
                       .splitlines(True)[-lines:])

    def terminate(self, grace_seconds):
        """SIGTERM, then how long it took to exit; fails if it did not exit 0 within the pod's
        terminationGracePeriodSeconds (Kubernetes would SIGKILL it)."""
        if self.popen.poll() is not None:
            raise Failure(f"{self.name} had already exited with {self.popen.returncode}; its "
                          f"log:\n{self.log_tail()}")
        started = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            status = self.popen.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired as error:
            self.popen.kill()
            self.popen.wait()
            raise Failure(f"{self.name} did not exit within terminationGracePeriodSeconds "
                          f"({grace_seconds} s) of SIGTERM") from error
        took = time.monotonic() - started
        if status != 0:
            raise Failure(f"{self.name} exited with {status} after SIGTERM; its log:\n"
                          f"{self.log_tail()}")
        return took

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def cleanup(self):
        self.kill()
        self.popen.stdout.close()
        self.log.close()
        os.unlink(self.log.name)


def test_backends():
    """The test services scripts/test.sh starts (IM_TEST_REDIS, IM_TEST_MYSQL, IM_TEST_KAFKA)."""
    backends = {}
    for name in ("IM_TEST_REDIS", "IM_TEST_MYSQL", "IM_TEST_KAFKA"):
        value = os.environ.get(name)
        if not value:
            raise Failure(f"{name} is not set: the deployment checks run the binaries against "
                          "the test services (scripts/test.sh starts them)")
        backends[name] = value
    return backends


class LocalPod:
    """A Pod's binary running locally: its config file and environment as rendered, except what
    must differ on this machine: every listening address moves to a free loopback port (and
    whatever names that port, such as gateway.advertise_address, moves with it), backends are
    the test services, and the gateway calls the local logic."""

    def __init__(self, pod, binary_path, overrides, run_id):
        self.pod = pod
        self.config = pod.effective_config()
        self.port_map = {}  # port in the pod -> local port
        env = {k: v for k, v in os.environ.items() if not k.startswith("IM_")}
        env.update({k: v for k, v in pod.environment().items()})
        for key in listen_keys(self.config):
            _, port = split_host_port(self.config[key], f"{pod.where()}: {key}")
            local = self.port_map.setdefault(port, free_port())
            env[env_name(key)] = f"127.0.0.1:{local}"
        advertised = self.config.get("gateway.advertise_address")
        if advertised:
            _, port = split_host_port(advertised, f"{pod.where()}: gateway.advertise_address")
            if port not in self.port_map:
                raise Failure(f"{pod.where()}: gateway.advertise_address {advertised} names port "
                              f"{port}, which the gateway does not listen on "
                              f"({sorted(self.port_map)})")
            env["IM_GATEWAY_ADVERTISE_ADDRESS"] = f"127.0.0.1:{self.port_map[port]}"
        env.update(overrides)
        self.env = env
        self.directory = tempfile.TemporaryDirectory(prefix=f"im-deploy-{run_id}-")
        config_path, text = pod.config_file()
        local_config = pathlib.Path(self.directory.name) / pathlib.Path(config_path).name
        local_config.write_text(text)
        args = list(pod.container.get("args", []))
        args[args.index("--config") + 1] = str(local_config)
        self.process = Process([binary_path] + args, env, f"{pod.binary}({pod.manifests.overlay})")
        self.ready_line = self.process.wait_for_line(f"{pod.binary} ready", 90)

    def local_port(self, pod_port):
        if pod_port not in self.port_map:
            raise Failure(f"{self.pod.where()}: port {pod_port} is not one {self.pod.binary} "
                          f"listens on (its listen keys: "
                          f"{ {k: self.config[k] for k in listen_keys(self.config)} })")
        return self.port_map[pod_port]

    def config_port(self, key):
        return split_host_port(self.config[key], f"{self.pod.where()}: {key}")[1]

    def wait_ready(self, metrics_key, timeout=45):
        """Waits for /readyz to answer 200 (backends reachable); fails with its last answer."""
        port = self.local_port(self.config_port(metrics_key))
        deadline = time.monotonic() + timeout
        status, body = None, ""
        while time.monotonic() < deadline:
            status, body = http_get(port, "/readyz")
            if status == 200:
                return
            time.sleep(0.25)
        raise Failure(f"{self.pod.where()}: /readyz did not turn 200 within {timeout} s against "
                      f"the test services (last: {status} {body.strip()}); its log:\n"
                      f"{self.process.log_tail()}")

    def cleanup(self):
        self.process.cleanup()
        self.directory.cleanup()


def kafka_login():
    """How im-logic logs in to the test broker (scripts/test.sh): SASL as IM_TEST_KAFKA_USERNAME
    over TLS checked against IM_TEST_KAFKA_TLS_CA; each unset: none of it."""
    username = os.environ.get("IM_TEST_KAFKA_USERNAME", "")
    ca = os.environ.get("IM_TEST_KAFKA_TLS_CA", "")
    protocol = {(True, True): "sasl_ssl", (True, False): "sasl_plaintext",
                (False, True): "ssl", (False, False): "plaintext"}[(bool(username), bool(ca))]
    return {
        "IM_KAFKA_SECURITY_PROTOCOL": protocol,
        "IM_KAFKA_USERNAME": username,
        "IM_KAFKA_PASSWORD": os.environ.get("IM_TEST_KAFKA_PASSWORD", "") if username else "",
        "IM_KAFKA_TLS_CA_FILE": ca,
    }


def logic_overrides(backends, run_id):
    mysql_host, mysql_port = split_host_port(backends["IM_TEST_MYSQL"], "IM_TEST_MYSQL")
    return {
        "IM_REDIS_ADDRESS": backends["IM_TEST_REDIS"],
        # The test Redis's ACL user (scripts/test.sh); empty: none.
        "IM_REDIS_USERNAME": os.environ.get("IM_TEST_REDIS_USERNAME", ""),
        "IM_REDIS_PASSWORD": os.environ.get("IM_TEST_REDIS_PASSWORD", ""),
        # The test MariaDB's certificate's CA (scripts/test.sh); empty: no TLS.
        "IM_MYSQL_TLS_CA_FILE": os.environ.get("IM_TEST_MYSQL_TLS_CA", ""),
        "IM_MYSQL_HOST": mysql_host,
        "IM_MYSQL_PORT": str(mysql_port),
        "IM_MYSQL_USER": "im",
        "IM_MYSQL_PASSWORD": "im-dev",
        # The test MariaDB's password is the published one, which im-logic refuses otherwise.
        "IM_DEV_MODE": "true",
        "IM_MYSQL_DATABASE": "im",
        "IM_KAFKA_BROKERS": backends["IM_TEST_KAFKA"],
        **kafka_login(),
        # Topics and a consumer group of this test's own: other tests share the broker.
        "IM_KAFKA_TOPIC_PREFIX": f"im-deploy-{run_id}.",
        "IM_KAFKA_CONSUMER_GROUP": f"im-deploy-{run_id}",
        # One broker, shared by every test: one replica, few partitions.
        "IM_KAFKA_REPLICATION_FACTOR": "1",
        "IM_KAFKA_PARTITIONS": "2",
        "IM_LOGIC_TOKEN_SECRET": TEST_TOKEN_SECRET,
    }


def start_cluster(manifests, binaries, run_id):
    """Starts the overlay's logic, then its gateway, as LocalPods; returns {binary: LocalPod}.
    The caller cleans up (cleanup_cluster) whatever happens."""
    pods = {p.binary: p for p in manifests.pods()}
    for binary in OPTION_SOURCES:
        if binary not in pods:
            raise Failure(f"{manifests.overlay}: no workload runs {binary}")
    backends = test_backends()
    started = {}
    started["im-logic"] = LocalPod(pods["im-logic"], binaries["im-logic"],
                                   logic_overrides(backends, run_id), run_id)
    logic = started["im-logic"]
    logic_port = logic.local_port(logic.config_port("logic.grpc_listen"))
    started["im-gateway"] = LocalPod(pods["im-gateway"], binaries["im-gateway"],
                                     {"IM_GATEWAY_LOGIC_TARGET": f"127.0.0.1:{logic_port}"},
                                     run_id)
    return started


def cleanup_cluster(started):
    for local in reversed(list(started.values())):
        local.cleanup()


def report(failures, what, expected=None):
    """Prints the failures (or success) and returns the exit status. With `expected` (regular
    expressions), the run is a self-test on a broken fixture: it passes when every expression
    matches a failure, so a check that can no longer fail is noticed."""
    if expected is not None:
        for failure in failures:
            print(f"failure found (expected): {failure}\n")
        unmatched = [e for e in expected if not any(re.search(e, f) for f in failures)]
        if unmatched:
            print(f"FAIL: {what}: no failure matched {unmatched}")
            return 1
        print(f"ok: {what} reports each of the {len(expected)} expected problems")
        return 0
    if failures:
        for failure in failures:
            print(f"FAIL: {failure}\n")
        print(f"{len(failures)} failure(s) in {what}")
        return 1
    print(f"ok: {what}")
    return 0
