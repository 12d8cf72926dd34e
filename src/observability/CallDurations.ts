/**
 * The series of one `rpc.*.call.duration` metric for one server: a histogram
 * per method and outcome (`error.type`), made on first use. RpcPool keeps one
 * per server it calls, RpcServer one for itself.
 *
 * @since 0.1.0
 */
import type { Histogram } from "./Histogram.ts"
import type { Attributes, Observed } from "./Observed.ts"
import * as S from "./Semconv.ts"

export class CallDurations {
  private readonly observed: Observed
  private readonly name: string
  private readonly description: string
  private readonly attributes: Attributes
  /** By method (successes), or by `error.type` and method. */
  private readonly series = new Map<string, Histogram>()

  constructor(observed: Observed, name: string, description: string, attributes: Attributes) {
    this.observed = observed
    this.name = name
    this.description = description
    this.attributes = attributes
  }

  /** The series of `method` ending with `errorType` (undefined: success), made if new. */
  of(method: string, errorType: string | undefined): Histogram {
    const key = errorType === undefined ? method : `${errorType}\n${method}`
    let histogram = this.series.get(key)
    if (histogram === undefined) {
      histogram = this.observed.histogram(
        this.name,
        this.description,
        errorType === undefined
          ? { ...this.attributes, [S.RPC_METHOD]: method, [S.UNIT]: S.SECONDS }
          : { ...this.attributes, [S.RPC_METHOD]: method, [S.ERROR_TYPE]: errorType, [S.UNIT]: S.SECONDS },
        S.rpcDurationBoundaries
      )
      this.series.set(key, histogram)
    }
    return histogram
  }
}
