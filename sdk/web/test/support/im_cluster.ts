import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { accepts, freePort } from "./free_port.js";
import { REPO, ServerProcess } from "./server_process.js";
import { DEV_SECRET } from "./token_signer.js";

const GATEWAYS = 2;

// The test services scripts/test.sh starts (deploy/local/services.sh), as tests/e2e's LocalCluster
// reaches them: IM_TEST_REDIS (or IM_TEST_REDIS_TLS with its CA), IM_TEST_MYSQL, IM_TEST_KAFKA,
// with their logins and CAs. Throws, naming what is missing, when they are not set.
function backendEnv(): Record<string, string> {
  const need = (name: string) => {
    const value = process.env[name];
    if (!value) {
      throw new Error(
        `${name} is not set: the cluster tests need the test services (scripts/test.sh)`,
      );
    }
    return value;
  };
  const optional = (name: string) => process.env[name] ?? "";
  const [mysqlHost, mysqlPort] = need("IM_TEST_MYSQL").split(":");
  const redisTls = optional("IM_TEST_REDIS_TLS") && optional("IM_TEST_REDIS_TLS_CA");
  const kafkaUser = optional("IM_TEST_KAFKA_USERNAME");
  const kafkaCa = optional("IM_TEST_KAFKA_TLS_CA");
  const kafkaProtocol = kafkaUser
    ? kafkaCa
      ? "sasl_ssl"
      : "sasl_plaintext"
    : kafkaCa
      ? "ssl"
      : "plaintext";
  return {
    IM_REDIS_ADDRESS: redisTls ? optional("IM_TEST_REDIS_TLS") : need("IM_TEST_REDIS"),
    IM_REDIS_TLS_CA_FILE: redisTls ? optional("IM_TEST_REDIS_TLS_CA") : "",
    IM_REDIS_USERNAME: optional("IM_TEST_REDIS_USERNAME"),
    IM_REDIS_PASSWORD: optional("IM_TEST_REDIS_PASSWORD"),
    IM_MYSQL_HOST: mysqlHost!,
    IM_MYSQL_PORT: mysqlPort!,
    IM_MYSQL_USER: "im",
    IM_MYSQL_PASSWORD: "im-dev",
    IM_MYSQL_DATABASE: "im",
    IM_MYSQL_TLS_CA_FILE: optional("IM_TEST_MYSQL_TLS_CA"),
    IM_DEV_MODE: "true", // the test MariaDB's password is the published one
    IM_KAFKA_BROKERS: need("IM_TEST_KAFKA"),
    IM_KAFKA_SECURITY_PROTOCOL: kafkaProtocol,
    IM_KAFKA_USERNAME: kafkaUser,
    IM_KAFKA_PASSWORD: optional("IM_TEST_KAFKA_PASSWORD"),
    IM_KAFKA_TLS_CA_FILE: kafkaCa,
  };
}

// The distributed cluster for a test: one im-logic on the test Redis, MariaDB and Kafka, and two
// im-gateways with WebSocket ports, each registered with logic before start() returns. Topics and
// consumer group are the run's own. $IM_LOGIC_BINARY and $IM_GATEWAY_BINARY override the binaries.
export class ImCluster {
  private constructor(
    private readonly logic: ServerProcess,
    private readonly gateways: ServerProcess[],
  ) {}

  static async start(): Promise<ImCluster> {
    const run = `web${randomBytes(4).toString("hex")}`;
    const grpcPort = await freePort();
    const logic = await ServerProcess.start(
      "im-logic",
      process.env.IM_LOGIC_BINARY ?? join(REPO, "build/test/logic/im-logic"),
      [],
      {
        ...backendEnv(),
        IM_LOGIC_ID: `${run}-logic-1`,
        IM_LOGIC_NODE_NUMBER: String(1 + (randomBytes(2).readUInt16BE() % 1023)),
        IM_LOGIC_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
        IM_LOGIC_METRICS_LISTEN: "127.0.0.1:0",
        IM_LOGIC_TOKEN_SECRET: DEV_SECRET,
        IM_LOGIC_SEND_RATE_PER_USER: "0",
        IM_LOGIC_GROUP_SEND_RATE_PER_USER: "0",
        IM_KAFKA_TOPIC_PREFIX: `e2e.${run}.`,
        IM_KAFKA_CONSUMER_GROUP: `e2e.${run}.fanout`,
        IM_LOG_LEVEL: "info",
      },
    );
    const gateways: ServerProcess[] = [];
    const cluster = new ImCluster(logic, gateways);
    try {
      for (let i = 1; i <= GATEWAYS; ++i) {
        gateways.push(await ImCluster.startGateway(`${run}-gw-${i}`, grpcPort));
      }
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  private static async startGateway(id: string, logicPort: number): Promise<ServerProcess> {
    const gateway = await ServerProcess.start(
      "im-gateway",
      process.env.IM_GATEWAY_BINARY ?? join(REPO, "build/test/gateway/im-gateway"),
      [],
      {
        IM_GATEWAY_ID: id,
        IM_GATEWAY_LISTEN: "127.0.0.1:0",
        IM_GATEWAY_WS_LISTEN: "127.0.0.1:0",
        IM_GATEWAY_GRPC_LISTEN: "127.0.0.1:0",
        IM_GATEWAY_METRICS_LISTEN: "127.0.0.1:0",
        IM_GATEWAY_LOGIC_TARGET: `127.0.0.1:${logicPort}`,
        IM_GATEWAY_WORKERS: "2",
        IM_GATEWAY_REGISTER_MS: "1000",
        IM_GATEWAY_DRAIN_TIMEOUT_MS: "3000",
        IM_LOG_LEVEL: "info",
      },
    );
    // Logic pushes to a gateway once it registered its push address.
    const deadline = Date.now() + 30_000;
    while (
      !/registered with logic/.test(gateway.logTail) ||
      !(await accepts(gateway.field("ws_port")))
    ) {
      if (!gateway.running || Date.now() > deadline) {
        await gateway.stop();
        throw new Error(`${id} did not register with logic:\n${gateway.logTail}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return gateway;
  }

  // The gateways' WebSocket ports, gw-1 first.
  get wsPorts(): number[] {
    return this.gateways.map((gateway) => gateway.field("ws_port"));
  }
  get urls(): string[] {
    return this.wsPorts.map((port) => `ws://127.0.0.1:${port}/`);
  }

  // The gateways first (they drain their clients), then logic.
  async stop(): Promise<void> {
    for (const gateway of this.gateways) await gateway.stop();
    await this.logic.stop();
  }
}
