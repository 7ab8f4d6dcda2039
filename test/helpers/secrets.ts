// Secrets in the real formats of every detector family (none is real), for tests that feed
// them through each surface a secret could leak from: evidence, export, viewer, approval page.

/** [what it is, the text as it would appear, the part that must never show]. */
export const SECRETS: Array<[string, string, string]> = [
  ["a bearer token", "Bearer 4f9c2d7e1b3a8c6d5e0f9a2b7c4d1e8f", "4f9c2d7e1b3a8c6d5e0f9a2b7c4d1e8f"],
  ["a JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImFkbWluIjp0cnVlfQ.c2lnbmF0dXJlLW5vdC1yZWFsLTEyMzQ1Ng", "c2lnbmF0dXJlLW5vdC1yZWFsLTEyMzQ1Ng"],
  ["an AWS access key", "AKIAQYLPMN5HHHFPZAM2", "AKIAQYLPMN5HHHFPZAM2"],
  ["a GitHub token", "ghp_R8fK2mN4pQ7sT1vX3zB6dF9hJ0kL5wY2cE4g", "ghp_R8fK2mN4pQ7sT1vX3zB6dF9hJ0kL5wY2cE4g"],
  ["a Slack token", "xoxb-2048-4096-AbCdEfGhIjKlMnOp", "xoxb-2048-4096-AbCdEfGhIjKlMnOp"],
  ["a Stripe key", "sk_live_51Hq8Zt2eZvKYlo2C0aBcDeFg", "sk_live_51Hq8Zt2eZvKYlo2C0aBcDeFg"],
  ["a Google API key", "AIzaSyD3x-9kQm2LpR7tVw1yZ4bN6cF8hJ0sA5e", "AIzaSyD3x-9kQm2LpR7tVw1yZ4bN6cF8hJ0sA5e"],
  ["an OpenAI key", "sk-proj-aB3dE5gH7jK9mN1pQ3sT5vX7", "sk-proj-aB3dE5gH7jK9mN1pQ3sT5vX7"],
  ["an Anthropic key", "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2", "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"],
  ["a PEM private key", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"],
  ["a password in a URL", "postgres://admin:hunter2-correct-horse@db.internal:5432/app", "hunter2-correct-horse"],
  ["an AWS secret access key", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
  ["an AWS secret key in JSON", '{"SecretAccessKey": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"}', "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"],
  ["a client secret", "OAUTH_CLIENT_SECRET=Zq8~f3Kd0pLmN7vB2xR5tY9w", "Zq8~f3Kd0pLmN7vB2xR5tY9w"],
  ["a quoted password with spaces", 'DB_PASSWORD="correct horse battery staple"', "correct horse battery staple"],
  ["an api_key in YAML", "api_key: 9f3b7c1d5e2a8b4c6d0e", "9f3b7c1d5e2a8b4c6d0e"],
  ["a token in a query string", "https://api.example.com/v1/items?page=2&token=tk8d7f6e5d4c3b2a19", "tk8d7f6e5d4c3b2a19"],
  ["a signed URL's signature", "https://bucket.s3.amazonaws.com/f?X-Amz-Signature=4c1e9f0b8a7d6c5e4f3a", "4c1e9f0b8a7d6c5e4f3a"],
  ["a Slack webhook", "https://hooks.slack.com/services/T024BE7LD/B01ABCDEF/abcdEFGHijklMNOPqrstUVWX", "abcdEFGHijklMNOPqrstUVWX"],
  ["a Telegram bot token", "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0/getMe", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"],
];

/** Every secret's text, in one string. */
export const ALL_SECRETS = SECRETS.map(([, text]) => text).join(" | ");

/** Path and query of an outbound request that carry secrets (as egress evidence keeps a URL: no host). */
export const SECRET_URL_PATH =
  "/services/T024BE7LD/B01ABCDEF/abcdEFGHijklMNOPqrstUVWX/ghp_R8fK2mN4pQ7sT1vX3zB6dF9hJ0kL5wY2cE4g/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0?token=tk8d7f6e5d4c3b2a19&api_key=9f3b7c1d5e2a8b4c6d0e&X-Amz-Signature=4c1e9f0b8a7d6c5e4f3a";

/** Which secrets show in `text` (by name); [] when none does. */
export const leakedIn = (text: string): string[] => SECRETS.filter(([, , secret]) => text.includes(secret)).map(([name]) => name);
