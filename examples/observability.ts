/**
 * Metrics and traces of RpcPool, RpcServer and ConnPool, exported with
 * effect's own OTLP exporter (`effect/observability`) to a collector this
 * example starts on loopback: nothing leaves the machine, and no collector
 * needs installing. It prints what the collector received: the span tree and
 * every metric with its type and unit. docs/observability.md lists them all.
 *
 *   npx node examples/observability.ts
 *
 * docs/observability.md shows the part between the markers;
 * test/observability/example.test.ts checks the two match and runs it.
 */
// example:start
import { Effect, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { Otlp, OtlpExporter } from "effect/observability"
import { ConnPool, RpcPool, TestService } from "../src/index.ts"

const observability = { metrics: true, tracing: true } as const

/** Some traffic: RPCs through the pool (one fails), and a borrow from a ConnPool. */
const traffic = Effect.gen(function*() {
  const server = yield* TestService.serve({ observability })
  yield* Effect.gen(function*() {
    yield* RpcPool.rpc(server.address, "Status.Ping", {})
    yield* RpcPool.rpc(server.address, "Test.Echo", { Seq: 1, Note: "hello", Payload: new Uint8Array(8) })
    yield* Effect.ignore(RpcPool.rpc(server.address, "Test.Fail", { Message: "no such key" }))
  }).pipe(Effect.withSpan("checkout"))
  const cache = yield* ConnPool.make({ name: "cache", dial: Effect.succeed({ id: 1 }), poolSize: 2, observability })
  yield* ConnPool.use(cache, () => Effect.void).pipe(Effect.withSpan("cache lookup"))
  // A closed pool's series leave the registry: export before the pools close.
  yield* (yield* OtlpExporter.Flusher).flush
})

/** Runs the traffic with effect's OTLP exporter pointed at `baseUrl`. */
export const exportTo = (baseUrl: string) =>
  traffic.pipe(
    Effect.scoped,
    Effect.provide(RpcPool.PoolLayer({ observability })),
    Effect.provide(
      Otlp.layerJson({ baseUrl, resource: { serviceName: "effect-connpool-example" } }).pipe(
        Layer.provide(FetchHttpClient.layer)
      )
    )
  )
// example:end

import * as http from "node:http"

/** One span as the collector received it. */
export interface ReceivedSpan {
  readonly name: string
  readonly kind: string
  readonly spanId: string
  readonly parentSpanId: string
  readonly attributes: Readonly<Record<string, unknown>>
}

/** One metric as the collector received it: its kind (sum, gauge, histogram), unit and points. */
export interface ReceivedMetric {
  readonly name: string
  readonly unit: string
  readonly kind: string
  readonly points: ReadonlyArray<Readonly<Record<string, unknown>>>
}

export interface Received {
  readonly spans: Array<ReceivedSpan>
  readonly metrics: Array<ReceivedMetric>
}

const kinds = ["unspecified", "internal", "server", "client", "producer", "consumer"]

type KeyValue = { readonly key: string; readonly value: Readonly<Record<string, unknown>> }
const attributesOf = (list: ReadonlyArray<KeyValue> | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map(({ key, value }) => [key, Object.values(value)[0]]))

/** Reads one OTLP/JSON export request into `received`. */
const record = (received: Received, path: string, body: Record<string, unknown>): void => {
  const scopes = (key: string, inner: string) =>
    ((body[key] ?? []) as Array<Record<string, unknown>>).flatMap((r) => (r[inner] ?? []) as Array<Record<string, unknown>>)
  if (path === "/v1/traces") {
    for (const span of scopes("resourceSpans", "scopeSpans").flatMap((s) => s["spans"] as Array<Record<string, unknown>>)) {
      received.spans.push({
        name: span["name"] as string,
        kind: kinds[span["kind"] as number] ?? "?",
        spanId: span["spanId"] as string,
        parentSpanId: (span["parentSpanId"] as string | undefined) ?? "",
        attributes: attributesOf(span["attributes"] as Array<KeyValue>)
      })
    }
  } else if (path === "/v1/metrics") {
    for (const m of scopes("resourceMetrics", "scopeMetrics").flatMap((s) => s["metrics"] as Array<Record<string, unknown>>)) {
      const kind = ["sum", "gauge", "histogram"].find((k) => k in m) ?? "?"
      const data = m[kind] as { readonly dataPoints: Array<Record<string, unknown>>; readonly isMonotonic?: boolean }
      received.metrics.push({
        name: m["name"] as string,
        unit: m["unit"] as string,
        kind: kind === "sum" ? (data.isMonotonic ? "counter" : "updowncounter") : kind,
        points: data.dataPoints.map((p) => ({ ...p, attributes: attributesOf(p["attributes"] as Array<KeyValue>) }))
      })
    }
  }
}

/** An OTLP/JSON collector on 127.0.0.1 that keeps what it is sent; closed with the scope. */
const collector = Effect.acquireRelease(
  Effect.callback<{ readonly server: http.Server; readonly url: string; readonly received: Received }>((resume) => {
    const received: Received = { spans: [], metrics: [] }
    const server = http.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        record(received, request.url ?? "", JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"))
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { readonly port: number }
      resume(Effect.succeed({ server, url: `http://127.0.0.1:${port}`, received }))
    })
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)


/** Starts the collector, exports to it, and returns what it received. */
export const run: Effect.Effect<Received, unknown> = Effect.scoped(Effect.gen(function*() {
  const { received, url } = yield* collector
  yield* exportTo(url)
  return received
}))

/** The span tree, parents before their children, and one line per metric. */
const describe = (received: Received): string => {
  const lines: Array<string> = ["spans:"]
  const ids = new Set(received.spans.map((s) => s.spanId))
  const tree = (parent: string, depth: number): void => {
    for (const s of received.spans) {
      const isChild = parent === "" ? !ids.has(s.parentSpanId) : s.parentSpanId === parent
      if (!isChild) continue
      lines.push(`${"  ".repeat(depth)}${s.name} (${s.kind}) ${JSON.stringify(s.attributes)}`)
      tree(s.spanId, depth + 1)
    }
  }
  tree("", 1)
  lines.push("metrics:")
  const seen = new Set<string>()
  for (const m of received.metrics) {
    if (seen.has(m.name)) continue
    seen.add(m.name)
    const series = received.metrics.filter((x) => x.name === m.name).reduce((n, x) => n + x.points.length, 0)
    lines.push(`  ${m.name} (${m.kind}, ${m.unit}): ${series} series, e.g. ${JSON.stringify(m.points[0]?.["attributes"] ?? {})}`)
  }
  return lines.join("\n")
}

if ((import.meta as { readonly main?: boolean }).main) {
  Effect.runPromise(run).then((received) => console.log(describe(received)))
}
