import type { Client, RequestOptions } from "./client.js";
import type { Filter } from "./filter.js";
import { ResourceSubscription, type ResourceSubscribeOptions } from "./subscription.js";

/** A stored record (protected fields are never sent). */
export type RecordData = Record<string, unknown> & { id: string };

/** One page of a listing. */
export interface Page {
  records: RecordData[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  cursor: string | null;
}

/** Options of {@link Resource.list}. */
export interface ListOptions {
  filter?: Filter;
  /** Page size (clamped by the server to the resource's `maxListLimit`). */
  limit?: number;
  cursor?: string;
}

/** CRUD and subscriptions of one configured resource. */
export class Resource {
  constructor(
    private readonly client: Client,
    readonly name: string,
  ) {}

  /** One record; rejects with `NOT_FOUND` when there is none (or it is not visible). */
  async get(id: string, opts?: RequestOptions): Promise<RecordData> {
    const f = await this.client.request("get", { resource: this.name, id }, opts);
    return f.data as RecordData;
  }

  /** One page of records. */
  async list(list: ListOptions = {}, opts?: RequestOptions): Promise<Page> {
    const f = await this.client.request("list", { resource: this.name, ...list }, opts);
    return { records: f.data as RecordData[], cursor: (f.cursor as string | null) ?? null };
  }

  /** Every record, page after page. */
  async *listAll(list: Omit<ListOptions, "cursor"> = {}, opts?: RequestOptions): AsyncGenerator<RecordData> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ ...list, cursor }, opts);
      yield* page.records;
      cursor = page.cursor ?? undefined;
    } while (cursor !== undefined);
  }

  /** Create a record (the server sets `id` when absent, and `createdAt`/`updatedAt`). */
  async insert(data: Record<string, unknown>, opts?: RequestOptions): Promise<RecordData> {
    const f = await this.client.request("insert", { resource: this.name, data }, opts);
    return f.data as RecordData;
  }

  /** Set top-level fields of a record; resolves with the record after the change. */
  async update(id: string, data: Record<string, unknown>, opts?: RequestOptions): Promise<RecordData> {
    const f = await this.client.request("update", { resource: this.name, id, data }, opts);
    return f.data as RecordData;
  }

  /** Remove a record; resolves with its id. */
  async delete(id: string, opts?: RequestOptions): Promise<string> {
    const f = await this.client.request("delete", { resource: this.name, id }, opts);
    return String(f.id);
  }

  /** Subscribe to this resource's changes (started at once). */
  subscribe(opts: ResourceSubscribeOptions = {}): ResourceSubscription {
    return new ResourceSubscription(this.client, this.name, opts).subscribe();
  }
}
