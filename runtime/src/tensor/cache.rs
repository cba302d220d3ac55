//! Data derived from a tensor (packed weights), cached on it until its
//! values or quantizer change.

use super::*;

impl Tensor {
    /// Data derived from this tensor by `build` (a packed weight, say),
    /// computed once per type `T` and reused until the tensor's values or
    /// quantizer change. Results never depend on whether the cache was hit.
    pub fn cached_derived<T: Any + Send + Sync>(&self, build: impl FnOnce(&Tensor) -> Result<T>) -> Result<Arc<T>> {
        let version = self.0.storage.version();
        let quantizer = self.quantizer().map(|q| Arc::as_ptr(&q) as usize);
        let type_id = std::any::TypeId::of::<T>();
        if let Some(d) = self.0.derived.lock().iter().find(|d| d.type_id == type_id) {
            if d.version == version && d.quantizer == quantizer {
                if let Ok(v) = d.value.clone().downcast::<T>() {
                    return Ok(v);
                }
            }
        }
        let value = Arc::new(build(self)?);
        let mut cache = self.0.derived.lock();
        cache.retain(|d| d.type_id != type_id);
        cache.push(Derived { type_id, version, quantizer, value: value.clone() });
        Ok(value)
    }
}
