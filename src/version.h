#ifndef AVALARA_VERSION_H
#define AVALARA_VERSION_H

/* The one version: the rockspecs and CHANGELOG.md follow it (spec/unit/packaging_spec.lua). */
#define AVALARA_VERSION "0.1.0"

#endif
