// The open chat's members, asked once (GET config.membersUrl) and kept for the @ picker and the
// members dialog; replaced by what the server answers to an addition or removal.

import { api, config, gettext } from "./api.js";

export function setUpMembers() {
  let members = null;
  let loading = null;
  const listeners = [];

  function set(list) {
    members = list;
    listeners.forEach((listener) => listener(list));
  }

  async function fetchMembers() {
    if (!config.membersUrl) return [];
    const { ok, data } = await api(config.membersUrl);
    if (ok) set(data.members);
    return ok ? data.members : { error: data.message || gettext("The members could not be loaded.") };
  }

  return {
    async list() {
      if (members) return members;
      loading = loading || fetchMembers().finally(() => (loading = null));
      const answer = await loading;
      return Array.isArray(answer) ? answer : [];
    },
    load: fetchMembers,
    set,
    forget() {
      members = null;
    },
    onChange(listener) {
      listeners.push(listener);
    },
    current: () => members,
  };
}
