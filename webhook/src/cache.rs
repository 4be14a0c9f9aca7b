//! The in-memory index of ServiceAccounts and Namespaces the mutation reads.
//!
//! A plain synchronous structure (`apply`, `delete`, `reset`) so it is tested without a cluster; the
//! [`crate::watcher`] feeds it and the [`crate::lookup`] fills misses. It holds only what the mutation needs:
//! a [`ServiceAccountView`] for annotated accounts and mere presence for the rest, never whole objects.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::views::{NamespaceView, ServiceAccountView};

/// What the index knows of one ServiceAccount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountEntry {
    /// It exists and has no role annotation.
    Unannotated,
    /// It exists with a role annotation.
    Annotated(Arc<ServiceAccountView>),
}

impl AccountEntry {
    /// From the view extracted from its annotations.
    pub fn from_view(view: Option<ServiceAccountView>) -> Self {
        view.map_or(Self::Unannotated, |view| Self::Annotated(Arc::new(view)))
    }

    /// The view, when the account is annotated.
    pub fn view(&self) -> Option<&ServiceAccountView> {
        match self {
            Self::Unannotated => None,
            Self::Annotated(view) => Some(view),
        }
    }
}

/// What the index knows of one Namespace: its role restriction, if any.
pub type NamespaceEntry = Option<Arc<NamespaceView>>;

#[derive(Debug, Default)]
struct Accounts {
    by_namespace: HashMap<Box<str>, HashMap<Box<str>, AccountEntry>>,
    /// Kept with the map so the size gauge costs nothing per event.
    len: usize,
}

/// ServiceAccounts by namespace then name, and Namespaces by name.
///
/// Nested maps so that a lookup by `(&str, &str)` allocates nothing on the admission path.
#[derive(Debug, Default)]
pub struct Index {
    accounts: RwLock<Accounts>,
    namespaces: RwLock<HashMap<Box<str>, NamespaceEntry>>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry for a ServiceAccount; `None` when the index has not seen it (yet).
    pub fn service_account(&self, namespace: &str, name: &str) -> Option<AccountEntry> {
        let accounts = read(&self.accounts);
        accounts.by_namespace.get(namespace)?.get(name).cloned()
    }

    /// Records a ServiceAccount as the watch saw it.
    pub fn apply_service_account(&self, namespace: &str, name: &str, entry: AccountEntry) {
        let mut guard = write(&self.accounts);
        let accounts = &mut *guard;
        let previous = accounts
            .by_namespace
            .entry(namespace.into())
            .or_default()
            .insert(name.into(), entry);
        if previous.is_none() {
            accounts.len += 1;
        }
    }

    /// Records a ServiceAccount fetched directly on a miss, unless the watch recorded it meanwhile: the watch's
    /// version is at least as new as a GET that started before it arrived.
    pub fn fill_service_account(&self, namespace: &str, name: &str, entry: AccountEntry) {
        let mut guard = write(&self.accounts);
        let accounts = &mut *guard;
        let names = accounts.by_namespace.entry(namespace.into()).or_default();
        if let std::collections::hash_map::Entry::Vacant(vacant) = names.entry(name.into()) {
            vacant.insert(entry);
            accounts.len += 1;
        }
    }

    /// Forgets a deleted ServiceAccount.
    pub fn delete_service_account(&self, namespace: &str, name: &str) {
        let mut guard = write(&self.accounts);
        let accounts = &mut *guard;
        let Some(names) = accounts.by_namespace.get_mut(namespace) else {
            return;
        };
        let removed = names.remove(name).is_some();
        if names.is_empty() {
            accounts.by_namespace.remove(namespace);
        }
        if removed {
            accounts.len -= 1;
        }
    }

    /// Replaces every ServiceAccount with a complete list (the watch's initial list or a re-list after it
    /// fell too far behind), so accounts deleted while the watch was down disappear.
    pub fn reset_service_accounts<I>(&self, list: I)
    where
        I: IntoIterator<Item = (String, String, AccountEntry)>,
    {
        let mut fresh = Accounts::default();
        for (namespace, name, entry) in list {
            if fresh
                .by_namespace
                .entry(namespace.into())
                .or_default()
                .insert(name.into(), entry)
                .is_none()
            {
                fresh.len += 1;
            }
        }
        for names in fresh.by_namespace.values_mut() {
            names.shrink_to_fit();
        }
        *write(&self.accounts) = fresh;
    }

    /// How many ServiceAccounts the index holds.
    pub fn service_account_count(&self) -> usize {
        read(&self.accounts).len
    }

    /// The entry for a Namespace; `None` when the index has not seen it (yet).
    pub fn namespace(&self, name: &str) -> Option<NamespaceEntry> {
        read(&self.namespaces).get(name).cloned()
    }

    /// Records a Namespace as the watch saw it.
    pub fn apply_namespace(&self, name: &str, entry: NamespaceEntry) {
        write(&self.namespaces).insert(name.into(), entry);
    }

    /// Records a Namespace fetched directly on a miss, unless the watch recorded it meanwhile.
    pub fn fill_namespace(&self, name: &str, entry: NamespaceEntry) {
        write(&self.namespaces).entry(name.into()).or_insert(entry);
    }

    /// Forgets a deleted Namespace.
    pub fn delete_namespace(&self, name: &str) {
        write(&self.namespaces).remove(name);
    }

    /// Replaces every Namespace with a complete list.
    pub fn reset_namespaces<I>(&self, list: I)
    where
        I: IntoIterator<Item = (String, NamespaceEntry)>,
    {
        let fresh = list
            .into_iter()
            .map(|(name, entry)| (name.into_boxed_str(), entry))
            .collect();
        *write(&self.namespaces) = fresh;
    }
}

// A panic while holding the lock cannot leave a map half-updated (every update is one insert or one swap),
// so a poisoned lock is still consistent: keep serving rather than failing every admission after it.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated(arn: &str) -> AccountEntry {
        AccountEntry::Annotated(Arc::new(ServiceAccountView::new(arn)))
    }

    #[test]
    fn apply_then_lookup_then_delete() {
        let index = Index::new();
        assert_eq!(index.service_account("team", "app"), None);
        index.apply_service_account(
            "team",
            "app",
            annotated("arn:aws:iam::111122223333:role/app"),
        );
        index.apply_service_account("team", "other", AccountEntry::Unannotated);
        let entry = index.service_account("team", "app").unwrap();
        assert_eq!(
            &*entry.view().unwrap().role_arn,
            "arn:aws:iam::111122223333:role/app"
        );
        assert_eq!(
            index.service_account("team", "other"),
            Some(AccountEntry::Unannotated)
        );
        assert_eq!(
            index.service_account("elsewhere", "app"),
            None,
            "namespaces are separate"
        );
        assert_eq!(index.service_account_count(), 2);

        index.delete_service_account("team", "app");
        assert_eq!(index.service_account("team", "app"), None);
        index.delete_service_account("team", "other");
        assert_eq!(index.service_account_count(), 0);
        index.delete_service_account("never", "seen");
    }

    #[test]
    fn an_update_replaces_the_view() {
        let index = Index::new();
        index.apply_service_account("ns", "sa", annotated("arn:aws:iam::111122223333:role/a"));
        index.apply_service_account("ns", "sa", AccountEntry::Unannotated);
        assert_eq!(
            index.service_account("ns", "sa"),
            Some(AccountEntry::Unannotated)
        );
    }

    #[test]
    fn reset_drops_what_the_new_list_lacks() {
        let index = Index::new();
        index.apply_service_account("ns", "gone", annotated("arn:aws:iam::111122223333:role/a"));
        index.reset_service_accounts([(
            "ns".to_owned(),
            "kept".to_owned(),
            AccountEntry::Unannotated,
        )]);
        assert_eq!(index.service_account("ns", "gone"), None);
        assert_eq!(
            index.service_account("ns", "kept"),
            Some(AccountEntry::Unannotated)
        );
        assert_eq!(index.service_account_count(), 1);
    }

    #[test]
    fn a_fill_never_overwrites_what_the_watch_stored() {
        let index = Index::new();
        index.apply_service_account("ns", "sa", AccountEntry::Unannotated);
        index.fill_service_account(
            "ns",
            "sa",
            annotated("arn:aws:iam::111122223333:role/stale"),
        );
        assert_eq!(
            index.service_account("ns", "sa"),
            Some(AccountEntry::Unannotated)
        );
        index.fill_service_account("ns", "new", AccountEntry::Unannotated);
        assert_eq!(
            index.service_account("ns", "new"),
            Some(AccountEntry::Unannotated)
        );
    }

    #[test]
    fn namespaces_record_restrictions_and_presence() {
        let index = Index::new();
        assert_eq!(index.namespace("team").map(|e| e.is_some()), None);
        index.apply_namespace("open", None);
        index.apply_namespace(
            "team",
            Some(Arc::new(NamespaceView::compile(
                "arn:aws:iam::111122223333:role/team-.*",
            ))),
        );
        assert!(
            index.namespace("open").unwrap().is_none(),
            "present, unrestricted"
        );
        assert!(index.namespace("team").unwrap().is_some());
        index.fill_namespace("team", None);
        assert!(
            index.namespace("team").unwrap().is_some(),
            "a fill does not overwrite the watch"
        );
        index.reset_namespaces([("other".to_owned(), None)]);
        assert!(index.namespace("team").is_none());
        index.delete_namespace("other");
        assert!(index.namespace("other").is_none());
    }
}
