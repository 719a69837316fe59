import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Requests by route and status, and their latency: registered once, beside the hooks that count them. */
export function registerHttpMetrics(app: FastifyInstance, registry: Registry): void {
  const requests = new Counter({
    name: 'celeba_gan_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'celeba_gan_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  // Label children cached by their values: resolving labels costs more than counting (bench:serve).
  const counters = new Map<string, ReturnType<typeof requests.labels>>();
  const histograms = new Map<string, ReturnType<typeof latency.labels>>();
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const key = `${route} ${request.method} ${reply.statusCode}`;
    let counter = counters.get(key);
    if (counter === undefined) counters.set(key, (counter = requests.labels({ route, method: request.method, status: String(reply.statusCode) })));
    counter.inc();
    let histogram = histograms.get(route);
    if (histogram === undefined) histograms.set(route, (histogram = latency.labels({ route })));
    histogram.observe(reply.elapsedTime / 1000);
  });
  // A client that went away gets no response (no onResponse): count it as nginx's 499.
  app.addHook('onRequestAbort', async (request) => {
    requests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: '499' });
  });
}
