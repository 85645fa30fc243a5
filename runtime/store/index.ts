// The node's persistent store (LMDB). See store.ts for the layout and the durability rules.
export { isFullError, isStoreError, StoreError, type StoreErrorCode } from './errors.ts';
export {
  type IdentityPatch,
  MIGRATIONS,
  type Migration,
  type MigrationContext,
  STORE_FORMAT,
  STORE_FORMAT_VERSION,
  type StoreIdentity,
} from './identity.ts';
export { type CheckedDir, checkBeforeOpen, NodeStore, type OpenStoreOptions, openStore, readStoreName, type RecoveryWrite } from './store.ts';
export { type RecoverResult, recoverStore } from './recover.ts';
