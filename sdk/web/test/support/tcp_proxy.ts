import { connect, createServer, type Server, type Socket } from "node:net";

// A TCP relay to 127.0.0.1:target that the test can cut: every connection through it is reset
// at once, both sides, as a network change or a dying middlebox would.
export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private cuts = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static start(target: number): Promise<TcpProxy> {
    return new Promise((resolve, reject) => {
      let proxy: TcpProxy;
      const server = createServer((client) => {
        const upstream = connect({ host: "127.0.0.1", port: target });
        const pair: [Socket, Socket] = [client, upstream];
        proxy.pairs.add(pair);
        const end = () => {
          proxy.pairs.delete(pair);
          client.destroy();
          upstream.destroy();
        };
        for (const socket of pair) {
          socket.on("error", end);
          socket.on("close", end);
        }
        client.pipe(upstream);
        upstream.pipe(client);
      });
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        proxy = new TcpProxy(server, typeof address === "object" && address ? address.port : 0);
        resolve(proxy);
      });
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  get connectionsCut(): number {
    return this.cuts;
  }

  cutAll(): void {
    for (const pair of this.pairs) {
      for (const socket of pair) {
        // A reset (RST), not a polite close: the client must notice by itself.
        if (socket.connecting || socket.destroyed) socket.destroy();
        else socket.resetAndDestroy();
      }
      ++this.cuts;
    }
    this.pairs.clear();
  }

  close(): Promise<void> {
    this.cutAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
