import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface PlatformFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** PEM of the CA to trust (the platform CA); only it is trusted. */
  ca?: string;
}

/**
 * `fetch` for the platform's own TLS services: Node's fetch cannot be told which CA to trust, so this sends the
 * request with node:https trusting `ca` and answers a standard `Response`.
 */
export function platformFetch(url: string, init: PlatformFetchInit = {}): Promise<Response> {
  const send = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(
      url,
      {
        method: init.method ?? 'GET',
        headers: init.headers ?? {},
        ...(init.ca ? { ca: init.ca } : {}),
        timeout: 10_000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers))
            if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
          const status = response.statusCode ?? 0;
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, headers }));
        });
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`${url}: no answer within 10 s`)));
    request.on('error', reject);
    request.end(init.body);
  });
}
