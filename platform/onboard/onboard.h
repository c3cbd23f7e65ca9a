/*
 * Managing a device process by hand (python -m simpler device ...), for
 * the public simpler_onboard_* calls. lib_dir is where simpler-device and
 * the device libraries are installed.
 */
#ifndef SIMPLER_ONBOARD_ONBOARD_H
#define SIMPLER_ONBOARD_ONBOARD_H

#include <stdint.h>

#include "simpler/simpler.h"

int onboard_device_start(const char *lib_dir, int32_t device_id, uint64_t gm_capacity, double idle_s);
int onboard_device_status(const char *lib_dir, int32_t device_id, simpler_onboard_info *out);
int onboard_device_stop(const char *lib_dir, int32_t device_id, int force);

#endif
