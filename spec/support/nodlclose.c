/* Preloaded by `make test-asan`: dlclose does nothing, so the modules Lua
 * unloads when it closes (avalara/core.so, and libcurl with it) stay mapped
 * and LeakSanitizer can name the frames of what they allocated at exit. */
int dlclose(void *handle);

int dlclose(void *handle) {
    (void)handle;
    return 0;
}
