/**
 * A cluster's listing at its master: the {@linkcode MasterLink} that registers and heartbeats,
 * the `registered` promise embedders await, and the join-ticket verifier of each cluster id the
 * master gave (tickets issued before a re-registration stay valid, and a used one stays used).
 *
 * It must never leave `registered` unsettled once the cluster stops, never reject it unhandled,
 * and never keep more than a few old verifiers.
 *
 * @module
 */

import { SustenetError } from "../shared/errors.ts";
import { TicketVerifier } from "../shared/join_ticket.ts";
import { roleLogger } from "../shared/logging.ts";
import type { ClusterInfo } from "../shared/protocol/packets.ts";
import { recordSpan } from "../shared/telemetry.ts";
import type { ClusterMasterAddress } from "./cluster_options.ts";
import { MasterLink, type MasterLinkOptions, type MasterLinkState } from "./master_link.ts";

const logger = roleLogger("cluster");

/** Ticket verifiers kept for earlier cluster ids (tickets issued before a re-registration). */
const MAX_OLD_VERIFIERS = 4;

/**
 * What {@linkcode MasterListing.start} needs: the master link's options without its address
 * (taken from `master`/`masters`) and callback, plus the keys tickets are checked with.
 *
 * @example
 * ```ts
 * import type { MasterListingOptions } from "./master_listing.ts";
 * import assert from "node:assert/strict";
 *
 * const master: MasterListingOptions["master"] = { hostname: "127.0.0.1", port: 6256 };
 * assert.equal(master?.port, 6256);
 * ```
 */
export interface MasterListingOptions
  extends Omit<MasterLinkOptions, "hostname" | "port" | "onRegistered"> {
  /** The master (`null`: none; undefined: 127.0.0.1:6256); the first of `masters` wins. */
  readonly master: ClusterMasterAddress | null | undefined;
  /** The cluster key as a WebCrypto key (tickets are sealed with it). */
  readonly clusterAesKey: CryptoKey;
  /** The identity public key tickets are bound to. */
  readonly identityPublicKey: Uint8Array;
  /** The cluster's name (for the registration span). */
  readonly name: string;
}

/**
 * The cluster's registration with its master, and the ticket verifiers that follow from it.
 *
 * @example Without a master, `registered` rejects and the state is `disabled`
 * ```ts
 * import { MasterListing } from "./master_listing.ts";
 * import assert from "node:assert/strict";
 *
 * const listing = new MasterListing({ noMaster: true, metrics: { registrations: { inc() {} } } });
 * assert.equal(listing.state, "disabled");
 * assert.equal(listing.verifier(), undefined);
 * await assert.rejects(listing.registered, /no master/);
 * ```
 */
export class MasterListing {
  readonly #metrics: { readonly registrations: { inc(): void } };
  readonly #verifiers = new Map<number, TicketVerifier>();
  // Settled once: the first registration, or why there will be none.
  readonly #registeredOnce = Promise.withResolvers<number>();
  #link: MasterLink | undefined;
  #announcement: MasterListingOptions["announcement"] | undefined;

  /**
   * Creates the listing (nothing connects until `start`).
   *
   * @param options Whether the cluster runs with no master (`master: null`), and the counter
   * of registrations (`ClusterMetrics` has it).
   */
  constructor(options: {
    readonly noMaster: boolean;
    readonly metrics: { readonly registrations: { inc(): void } };
  }) {
    this.#metrics = options.metrics;
    // Handled here so that an embedder who never looks at `registered` gets no unhandled
    // rejection; one who awaits it still sees the rejection.
    this.#registeredOnce.promise.catch(() => {});
    if (options.noMaster) {
      this.#registeredOnce.reject(
        new SustenetError("not_registered", "the cluster runs with no master (master: null)"),
      );
    }
  }

  /**
   * Resolves with the cluster id of the first registration; rejects (`not_registered`) without
   * a master or when the cluster stops first.
   */
  get registered(): Promise<number> {
    return this.#registeredOnce.promise;
  }

  /** The id the master gave at the latest registration, or undefined before the first. */
  get clusterId(): number | undefined {
    return this.#link?.clusterId;
  }

  /** The master link's state (`disabled` without a master). */
  get state(): MasterLinkState | "disabled" {
    return this.#link?.state ?? "disabled";
  }

  /** The verifier of the current cluster id, or undefined before the first registration. */
  verifier(): TicketVerifier | undefined {
    const id = this.#link?.clusterId;
    return id === undefined ? undefined : this.#verifiers.get(id);
  }

  /**
   * This cluster as a client lists it (its own entry of SendClusters), once registered.
   *
   * @param load Players now.
   * @param full Whether it takes no more players.
   * @returns One entry, or none before the first registration.
   */
  selfInfo(load: number, full: boolean): readonly ClusterInfo[] {
    const id = this.#link?.clusterId;
    const a = this.#announcement;
    if (id === undefined || a === undefined) return [];
    return [{
      id,
      name: a.name,
      host: a.host,
      port: a.port,
      load,
      maxConnections: a.maxConnections,
      keyVersion: a.keyVersion,
      full,
      ...(a.endpoints === undefined ? {} : { endpoints: a.endpoints }),
    }];
  }

  /**
   * Starts registering with the master (nothing, with a warning, when there is none).
   *
   * @param options The master, the link's options and the ticket keys.
   */
  start(options: MasterListingOptions): void {
    const { master: single, clusterAesKey, identityPublicKey, name, ...linkOptions } = options;
    const masters = options.masters ?? [];
    const master = masters.length > 0
      ? masters[0]
      : single === undefined
      ? { hostname: "127.0.0.1", port: 6256 }
      : single;
    if (master === null) {
      logger.warn("no master configured: join tickets cannot be checked, every join is refused");
      return;
    }
    this.#announcement = options.announcement;
    this.#link = new MasterLink({
      ...linkOptions,
      hostname: master.hostname,
      port: master.port,
      masters,
      onRegistered: (clusterId) => {
        this.#metrics.registrations.inc();
        this.#registeredOnce.resolve(clusterId);
        recordSpan("sustenet.cluster.registered", {
          "sustenet.cluster.id": clusterId,
          "sustenet.cluster.name": name,
        }, Date.now());
        this.#keepVerifier(clusterId, clusterAesKey, identityPublicKey);
      },
    });
    this.#link.start();
  }

  /**
   * Deregisters (when registered) and stops the link; `registered` rejects if still pending.
   *
   * @param reason Why the cluster stops.
   */
  async stop(reason: string): Promise<void> {
    this.#registeredOnce.reject(
      new SustenetError("not_registered", "the cluster stopped before the master accepted it"),
    );
    await this.#link?.stop(reason);
  }

  #keepVerifier(clusterId: number, clusterKey: CryptoKey, identityPublicKey: Uint8Array): void {
    if (this.#verifiers.has(clusterId)) return;
    // One verifier per id, kept across re-registrations so a used ticket stays used.
    this.#verifiers.set(
      clusterId,
      new TicketVerifier({ clusterKey, clusterId, identityPublicKey }),
    );
    for (const id of this.#verifiers.keys()) {
      if (this.#verifiers.size <= MAX_OLD_VERIFIERS + 1) break;
      if (id !== clusterId) this.#verifiers.delete(id);
    }
  }
}
