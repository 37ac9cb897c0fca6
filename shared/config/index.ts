export * from './load';
export { defaultFenceMarginMs } from './rules';
export * from './schema';
