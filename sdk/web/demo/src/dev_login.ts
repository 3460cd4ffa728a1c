// Login tokens from the local dev web server (deploy/local/dev-web), which plays the role of the
// app's backend: a real app gets them from its own server after its own login.
export interface DevLogin {
  token: string;
  wsUrls: string[];
}

export async function fetchDevLogin(uid: string, device: string): Promise<DevLogin> {
  const response = await fetch("/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ uid, device }),
  });
  if (!response.ok) {
    throw new Error(`POST /dev/token: ${response.status} ${await response.text()}`);
  }
  const login = (await response.json()) as DevLogin;
  return { token: login.token, wsUrls: login.wsUrls };
}
