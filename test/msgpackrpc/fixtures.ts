/**
 * Realistic message bodies for the codec tests: what Consul sends when a listing is large.
 */

/**
 * One entry of Consul's `Health.ServiceNodes` / `Catalog.ServiceNodes` reply, with the fields a Consul 1.17
 * server fills in (most of them empty or zero, as in real listings).
 */
export const serviceNode = (i: number) => ({
  ID: `a1b2c3d4-0000-4000-8000-${String(i).padStart(12, "0")}`,
  Node: `node-${i}`,
  Address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  Datacenter: "dc1",
  TaggedAddresses: { lan: `10.0.0.${i & 255}`, lan_ipv4: `10.0.0.${i & 255}`, wan: `198.51.100.${i & 255}`, wan_ipv4: `198.51.100.${i & 255}` },
  NodeMeta: { "consul-network-segment": "", "consul-version": "1.17.0" },
  ServiceKind: "",
  ServiceID: `web-${i}`,
  ServiceName: "web",
  ServiceTags: ["v1", "primary"],
  ServiceAddress: "",
  ServiceTaggedAddresses: null,
  ServiceWeights: { Passing: 1, Warning: 1 },
  ServiceMeta: { version: "1.2.3" },
  ServicePort: 8080,
  ServiceSocketPath: "",
  ServiceEnableTagOverride: false,
  ServiceProxy: {
    DestinationServiceName: "",
    DestinationServiceID: "",
    LocalServiceAddress: "",
    LocalServicePort: 0,
    LocalServiceSocketPath: "",
    Mode: "",
    Config: null,
    Upstreams: null,
    MeshGateway: { Mode: "" },
    Expose: { Checks: false, Paths: null },
    TransparentProxy: { OutboundListenerPort: 0, DialedDirectly: false },
    AccessLogs: { Enabled: false, DisableListenerLogs: false, Type: "", Path: "", JSONFormat: "", TextFormat: "" }
  },
  ServiceConnect: { Native: false, SidecarService: null, PeerName: "" },
  ServiceLocality: null,
  ServicePeerName: "",
  PeerName: "",
  CreateIndex: 100 + i,
  ModifyIndex: 200 + i
})

/** A catalog listing of `n` service instances: about 930 bytes each on the wire. */
export const catalogListing = (n: number) => ({
  Index: 123456,
  KnownLeader: true,
  LastContact: 0,
  ServiceNodes: Array.from({ length: n }, (_, i) => serviceNode(i))
})
