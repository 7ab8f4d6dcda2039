/** The most records one evidence page holds; the route and the ledger both enforce it. */
export const PAGE_LIMIT_MAX = 500;
