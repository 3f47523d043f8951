// The commented default config file, printed by --print-default-config.
// Parsing it yields exactly Config{} (default_config_test checks this).
#ifndef SNAPSHOTTER_CONFIG_DEFAULT_CONFIG_H_
#define SNAPSHOTTER_CONFIG_DEFAULT_CONFIG_H_

namespace guest_pull {
namespace config {

// TOML text documenting every key with its default value.
extern const char kDefaultConfigToml[];

}  // namespace config
}  // namespace guest_pull

#endif  // SNAPSHOTTER_CONFIG_DEFAULT_CONFIG_H_
