/** Cost model of a deployment: prices (prices.ts) and the itemized monthly estimate (model.ts). Pure. */
export * from './model';
export * from './prices';
