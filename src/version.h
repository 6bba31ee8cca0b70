#ifndef AVALARA_VERSION_H
#define AVALARA_VERSION_H

/* Kept in step with the rockspec version (scm) and lua/avalara/init.lua. */
#define AVALARA_VERSION "0.1.0-dev"

#endif
