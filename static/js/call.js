// The calling page: a Teams user of a customer tenant calls a colleague or joins a Teams meeting
// through Azure Communication Services. Bundled by esbuild into static/dist/call.js.
import { CallClient, LocalVideoStream, VideoStreamRenderer } from "@azure/communication-calling";
import { AzureCommunicationTokenCredential } from "@azure/communication-common";

const config = JSON.parse(document.getElementById("call-config").textContent);
// Django's JavaScript catalog (base.html loads it before this module): the page's language.
const { gettext, ngettext, interpolate } = window;

// Requests to the portal are ours and quick; the calling service gets config.connectTimeoutMs.
const PORTAL_TIMEOUT_MS = 20000;
const SEARCH_DEBOUNCE_MS = 250;
const REACHED_SERVICE = new Set(["Ringing", "EarlyMedia", "Connected", "InLobby", "LocalHold", "RemoteHold"]);
const CONNECTING_STATES = new Set(["None", "Connecting", "Ringing", "EarlyMedia"]);
// Call end codes the SDK uses when it could not reach the service (network, DNS, offline, timeout).
const NETWORK_END_CODES = new Set([408, 490, 495, 496]);
const END_REASONS = {
  403: gettext("You are not allowed to make this call."),
  404: gettext("The person or meeting could not be found."),
  410: gettext("The media connection could not be set up."),
  480: gettext("They are not available right now."),
  486: gettext("They are busy."),
  487: gettext("The call was cancelled."),
  500: gettext("The calling service had a problem."),
  603: gettext("The call was declined."),
};
const WRONG_ACCOUNT = gettext("You signed in as someone else in another tab. Reload the page to call as that account.");
const NOT_A_MEETING_LINK = gettext(
  "That is not a Teams meeting link. Paste the link from the invitation: it starts with https://teams.microsoft.com/.",
);
const TEAMS_MEETING_HOSTS = ["teams.microsoft.com", "teams.microsoft.us", "teams.cloud.microsoft"];

const $ = (id) => document.getElementById(id);
const ui = {
  state: $("call-state"),
  retry: $("call-retry"),
  devicesStatus: $("devices-status"),
  camera: $("camera-select"),
  microphone: $("microphone-select"),
  speaker: $("speaker-select"),
  personForm: $("person-form"),
  personFields: $("person-fields"),
  personSearch: $("person-search"),
  peopleStatus: $("people-status"),
  peopleResults: $("people-results"),
  personError: $("person-error"),
  meetingForm: $("meeting-form"),
  meetingFields: $("meeting-fields"),
  meetingLink: $("meeting-link"),
  meetingError: $("meeting-error"),
  inCall: $("in-call"),
  inCallTitle: $("in-call-title"),
  mute: $("mute-button"),
  video: $("video-button"),
  share: $("share-button"),
  hangUp: $("hang-up-button"),
  localVideo: $("local-video"),
  remoteVideo: $("remote-video"),
};

const session = {
  credential: null,
  teamsUser: null,
  callClient: null,
  deviceManager: null,
  agent: null,
  agentPending: null,
  connecting: false,
  call: null,
  picked: null,
  localVideo: null,
  localRenderer: null,
  retryAction: null,
  searchTimer: null,
  searchAbort: null,
};

const deviceLists = new Map();

// The portal's JSON errors carry a message meant for the user and, sometimes, a page to go to.
class PortalError extends Error {
  constructor(message, { status = 0, actionUrl = "" } = {}) {
    super(message);
    this.status = status;
    this.actionUrl = actionUrl;
  }
}

class UnreachableError extends Error {}

// ---------------------------------------------------------------- status region

function showState(state, title, detail = "") {
  ui.state.dataset.state = state;
  ui.state.replaceChildren(element("strong", title));
  if (detail) ui.state.append(" ", detail);
}

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function showActions({ retry = null } = {}) {
  session.retryAction = retry;
  ui.retry.hidden = !retry;
  // The forms were disabled while connecting, which leaves keyboard focus nowhere: bring it back.
  const focusLost = !document.activeElement || document.activeElement === document.body;
  if (retry && focusLost) ui.retry.focus();
}

function showPortalError(error, retry) {
  showState("error", error.message);
  if (error.actionUrl) ui.state.append(" ", element("a", actionTextFor(error), { href: error.actionUrl }));
  const retryable = error.status === 0 || error.status >= 500;
  showActions({ retry: retryable ? retry : null });
}

function actionTextFor(error) {
  return error.status === 401 ? gettext("Sign in again") : gettext("What you can do");
}

function showReady() {
  showState("ready", interpolate(gettext("Ready to call as %(name)s."), { name: config.displayName }, true));
  showActions();
  setCallingEnabled(true);
}

function showUnreachable(retry) {
  showState(
    "unreachable",
    gettext("Calling service unreachable."),
    gettext(
      "This browser could not connect to Azure Communication Services, so the call was not placed. " +
        "Check your network connection (a firewall or proxy may block it), then try again.",
    ),
  );
  showActions({ retry });
}

function setCallingEnabled(enabled) {
  ui.personFields.disabled = !enabled;
  ui.meetingFields.disabled = !enabled;
}

// ---------------------------------------------------------------- portal requests

function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

async function portalFetch(url, init = {}) {
  let response;
  try {
    response = await fetch(url, {
      ...init,
      credentials: "same-origin",
      headers: { Accept: "application/json", ...init.headers },
      signal: AbortSignal.any([AbortSignal.timeout(PORTAL_TIMEOUT_MS), init.signal].filter(Boolean)),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new PortalError(gettext("The portal could not be reached. Check your network connection and try again."));
  }
  return readPortalResponse(response);
}

async function readPortalResponse(response) {
  const body = await response.json().catch(() => null);
  if (response.ok && body) return body;
  const message =
    body?.message ||
    interpolate(gettext("The portal answered with an error (HTTP %(status)s). Try again later."), { status: response.status }, true);
  throw new PortalError(message, { status: response.status, actionUrl: body?.action_url || "" });
}

function fetchToken() {
  return portalFetch(config.tokenUrl, { method: "POST", headers: { "X-CSRFToken": csrfToken() } });
}

async function refreshToken() {
  try {
    const body = await fetchToken();
    if (body.teams_user && body.teams_user.id !== config.teamsUserId) throw new PortalError(WRONG_ACCOUNT, { status: 409 });
    return body.token;
  } catch (error) {
    // The SDK only sees a failed refresh; the user should see why (e.g. sign in again).
    if (error instanceof PortalError) showPortalError(error, start);
    throw error;
  }
}

// ---------------------------------------------------------------- start up

async function start() {
  showState("loading", gettext("Getting ready to call…"));
  showActions();
  try {
    const first = await fetchToken();
    if (first.teams_user && first.teams_user.id !== config.teamsUserId) {
      throw new PortalError(WRONG_ACCOUNT, { status: 409 });
    }
    session.teamsUser = first.teams_user;
    session.credential = makeCredential(first.token);
    await session.credential.getToken();
    showReady();
    searchPeople("");
  } catch (error) {
    showStartError(error);
  }
}

function makeCredential(token) {
  session.credential?.dispose();
  return new AzureCommunicationTokenCredential({ token, tokenRefresher: refreshToken, refreshProactively: true });
}

function showStartError(error) {
  if (error instanceof PortalError) {
    showPortalError(error, start);
    return;
  }
  console.warn("The calling token was not accepted", error);
  showState("error", gettext("The sign-in token for calling was not accepted."), gettext("Reload the page to try again."));
  showActions({ retry: start });
}

// ---------------------------------------------------------------- devices

function callClient() {
  session.callClient ??= new CallClient();
  return session.callClient;
}

async function setUpDevices() {
  try {
    session.deviceManager = await callClient().getDeviceManager();
    const access = await session.deviceManager.askDevicePermission({ audio: true, video: true });
    const found = await fillDeviceSelects();
    ui.devicesStatus.textContent = devicesMessage(access, found);
  } catch (error) {
    console.warn("Devices are not available", error);
    ui.devicesStatus.textContent = gettext("Your camera and microphone could not be used. You can still try to call.");
  }
}

function devicesMessage(access, found) {
  if (!access.audio && !access.video) {
    return gettext("The browser did not allow the camera and microphone. Allow them in the site settings, then reload.");
  }
  const microphone = access.audio && found.microphones;
  const camera = access.video && found.cameras;
  if (microphone && camera) return gettext("Choose the camera, microphone and speaker to use.");
  if (microphone) return gettext("No camera is available; you can call with audio only.");
  if (camera) return gettext("No microphone is available; others won't hear you.");
  return gettext("No camera or microphone was found. You can still call, but others won't see or hear you.");
}

async function fillDeviceSelects() {
  const manager = session.deviceManager;
  const [cameras, microphones, speakers] = await Promise.all([
    manager.getCameras(),
    manager.getMicrophones(),
    manager.isSpeakerSelectionAvailable ? manager.getSpeakers() : Promise.resolve([]),
  ]);
  fillSelect(ui.camera, cameras, cameras[0], gettext("No camera found"));
  fillSelect(ui.microphone, microphones, manager.selectedMicrophone, gettext("No microphone found"));
  const noSpeakers = manager.isSpeakerSelectionAvailable ? gettext("No speaker found") : gettext("Chosen by the browser");
  fillSelect(ui.speaker, speakers, manager.selectedSpeaker, noSpeakers);
  return { cameras: cameras.length, microphones: microphones.length };
}

function fillSelect(select, devices, selected, emptyText) {
  select.replaceChildren();
  deviceLists.set(select, devices);
  for (const device of devices) {
    select.append(new Option(device.name || gettext("Unnamed device"), device.id, false, device.id === selected?.id));
  }
  if (!devices.length) select.append(new Option(emptyText, ""));
  select.disabled = !devices.length;
}

function chosenDevice(select) {
  return (deviceLists.get(select) || []).find((device) => device.id === select.value);
}

async function onDeviceChange(select, apply) {
  const device = chosenDevice(select);
  if (!device) return;
  try {
    await apply(device);
  } catch (error) {
    console.warn("Could not switch device", error);
    ui.devicesStatus.textContent = interpolate(gettext("Could not switch to %(device)s."), { device: device.name }, true);
  }
}

function wireDevices() {
  ui.microphone.addEventListener("change", () =>
    onDeviceChange(ui.microphone, (device) => session.deviceManager.selectMicrophone(device)),
  );
  ui.speaker.addEventListener("change", () =>
    onDeviceChange(ui.speaker, (device) => session.deviceManager.selectSpeaker(device)),
  );
  ui.camera.addEventListener("change", () =>
    onDeviceChange(ui.camera, (device) => session.localVideo?.switchSource(device)),
  );
}

// ---------------------------------------------------------------- people search

function onSearchInput() {
  session.picked = null;
  clearTimeout(session.searchTimer);
  session.searchTimer = setTimeout(() => searchPeople(ui.personSearch.value.trim()), SEARCH_DEBOUNCE_MS);
}

async function searchPeople(query) {
  session.searchAbort?.abort();
  session.searchAbort = new AbortController();
  const url = `${config.peopleUrl}?${new URLSearchParams({ q: query })}`;
  try {
    const body = await portalFetch(url, { signal: session.searchAbort.signal });
    showPeople(body.people, body.has_more, query);
  } catch (error) {
    if (error.name === "AbortError") return;
    ui.peopleResults.replaceChildren();
    ui.peopleStatus.textContent = error.message;
  }
}

function showPeople(people, hasMore, query) {
  ui.peopleResults.replaceChildren(...people.map(personItem));
  ui.peopleStatus.textContent = peopleSummary(people.length, hasMore, query);
}

function peopleSummary(count, hasMore, query) {
  if (!count) {
    if (!query) return gettext("Nobody else from your organization is listed.");
    return interpolate(gettext("Nobody matches “%(query)s”."), { query }, true);
  }
  const summary = hasMore
    ? ngettext(
        "%(count)s person shown; type more of the name to narrow it down.",
        "%(count)s people shown; type more of the name to narrow it down.",
        count,
      )
    : ngettext("%(count)s person found.", "%(count)s people found.", count);
  return interpolate(summary, { count }, true);
}

function personItem(person) {
  const pressed = String(person.id === session.picked?.id);
  const button = element("button", "", { type: "button", class: "person", "aria-pressed": pressed });
  button.append(element("span", person.name, { class: "person-name" }), " ");
  button.append(element("span", person.upn, { class: "person-upn" }));
  button.addEventListener("click", () => pickPerson(person, button));
  const item = document.createElement("li");
  item.append(button);
  return item;
}

function pickPerson(person, button) {
  session.picked = person;
  for (const other of ui.peopleResults.querySelectorAll("button")) other.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", "true");
  showFieldError(ui.personError, ui.personSearch, "");
  ui.peopleStatus.textContent = interpolate(gettext("%(name)s chosen. Press Call to call them."), { name: person.name }, true);
}

function showFieldError(element, input, message) {
  element.textContent = message;
  element.hidden = !message;
  input.setAttribute("aria-invalid", String(Boolean(message)));
}

// ---------------------------------------------------------------- placing calls

function onPersonSubmit(event) {
  event.preventDefault();
  if (!session.picked) {
    showFieldError(ui.personError, ui.personSearch, gettext("Choose a person from the list first."));
    ui.personSearch.focus();
    return;
  }
  const person = session.picked;
  placeCall({ who: person.name, title: interpolate(gettext("Call with %(name)s"), { name: person.name }, true) }, (agent) =>
    agent.startCall(teamsUserIdentifier(person.id)),
  );
}

function teamsUserIdentifier(id) {
  return { microsoftTeamsUserId: id, cloud: session.teamsUser?.cloud || "public" };
}

function onMeetingSubmit(event) {
  event.preventDefault();
  const link = ui.meetingLink.value.trim();
  if (!isTeamsMeetingLink(link)) {
    showFieldError(ui.meetingError, ui.meetingLink, link ? NOT_A_MEETING_LINK : gettext("Paste the meeting link first."));
    ui.meetingLink.focus();
    return;
  }
  showFieldError(ui.meetingError, ui.meetingLink, "");
  // No `who`: the meeting has texts of its own.
  placeCall({ who: null, title: gettext("Teams meeting") }, (agent) => agent.join({ meetingLink: link }));
}

function isTeamsMeetingLink(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  const knownHost = TEAMS_MEETING_HOSTS.some((host) => url.hostname === host || url.hostname.endsWith(`.${host}`));
  const meetingPath = url.pathname.startsWith("/l/meetup-join/") || url.pathname.startsWith("/meet/");
  return url.protocol === "https:" && knownHost && meetingPath;
}

// One deadline covers creating the agent and reaching the service, so the user waits at most
// connectTimeoutMs before hearing that the calling service is unreachable.
async function placeCall(target, dial) {
  const deadline = Date.now() + config.connectTimeoutMs;
  setCallingEnabled(false);
  showActions();
  showState("connecting", callStateText("Connecting", target.who));
  session.connecting = true;
  try {
    const agent = await connectAgent(deadline);
    const call = dial(agent);
    watchCall(call, target);
    await beforeDeadline(serviceReached(call), deadline);
  } catch (error) {
    abandonCall();
    showCallFailure(error, () => placeCall(target, dial));
  } finally {
    session.connecting = false;
  }
}

async function connectAgent(deadline) {
  while (!session.agent) {
    session.agentPending ??= createAgent();
    await beforeDeadline(session.agentPending, deadline);
  }
  return session.agent;
}

// Asking the CallClient again while an agent is being created returns that same half-made
// agent, so creation is shared. An agent that arrives after the caller gave up is disposed,
// which stops it retrying the service in the background; the next attempt creates a new one.
async function createAgent() {
  try {
    const agent = await callClient().createTeamsCallAgent(session.credential);
    if (session.connecting) session.agent = agent;
    else await agent.dispose().catch((error) => console.warn("Could not dispose of the calling agent", error));
  } finally {
    session.agentPending = null;
  }
}

function beforeDeadline(promise, deadline) {
  const ms = Math.max(0, deadline - Date.now());
  let timer;
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new UnreachableError(`No answer within ${config.connectTimeoutMs} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function serviceReached(call) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (REACHED_SERVICE.has(call.state)) resolve();
      if (call.state === "Disconnected") reject(new CallEndedError(call.callEndReason));
    };
    call.on("stateChanged", check);
    check();
  });
}

class CallEndedError extends Error {
  constructor(reason) {
    super(`The call ended while connecting (${reason?.code}/${reason?.subCode})`);
    this.reason = reason;
  }
}

function abandonCall() {
  const call = session.call;
  if (!call) return;
  endCall(call);
  // Not awaited: with the service out of reach, hanging up may never settle either.
  if (call.state !== "Disconnected") call.hangUp().catch(() => {});
}

function showCallFailure(error, retry) {
  setCallingEnabled(true);
  if (error instanceof CallEndedError && !NETWORK_END_CODES.has(error.reason?.code)) {
    showEnded(error.reason);
  } else if (error instanceof UnreachableError || error instanceof CallEndedError || looksOffline(error)) {
    console.warn("Calling service unreachable:", error.message);
    showUnreachable(retry);
  } else {
    console.error("The call could not be placed", error);
    showState("error", gettext("The call could not be placed."), error.message || "");
    showActions({ retry });
  }
}

function looksOffline(error) {
  const text = `${error?.name} ${error?.message}`.toLowerCase();
  return !navigator.onLine || /network|failed to fetch|timed out|offline/.test(text);
}

// ---------------------------------------------------------------- in a call

function watchCall(call, target) {
  session.call = call;
  ui.inCallTitle.textContent = target.title;
  ui.inCall.hidden = false;
  call.on("stateChanged", () => onCallState(call, target.who));
  call.on("isMutedChanged", () => pressed(ui.mute, call.isMuted));
  call.on("isLocalVideoStartedChanged", () => pressed(ui.video, call.isLocalVideoStarted));
  call.on("isScreenSharingOnChanged", () => pressed(ui.share, call.isScreenSharingOn));
  call.on("remoteParticipantsUpdated", ({ added }) => added.forEach(watchParticipant));
  call.remoteParticipants.forEach(watchParticipant);
  syncControls(call);
}

function onCallState(call, who) {
  if (session.call !== call) return;
  if (call.state === "Disconnected") {
    endCall(call);
    // While connecting, placeCall decides between "ended" and "unreachable".
    if (!session.connecting) showEnded(call.callEndReason);
    return;
  }
  const text = callStateText(call.state, who);
  if (text) showState(CONNECTING_STATES.has(call.state) ? "connecting" : "in-call", text);
}

// `who`: the person called, or null for a meeting.
function callStateText(state, who) {
  const named = (text) => interpolate(text, { name: who }, true);
  const connecting = who ? named(gettext("Connecting to %(name)s…")) : gettext("Connecting to the meeting…");
  const ringing = who ? named(gettext("Ringing %(name)s…")) : gettext("Connecting to the meeting…");
  return {
    None: connecting,
    Connecting: connecting,
    Ringing: ringing,
    EarlyMedia: ringing,
    InLobby: gettext("Waiting in the meeting lobby until someone lets you in."),
    Connected: who ? named(gettext("Connected to %(name)s.")) : gettext("Connected to the meeting."),
    LocalHold: gettext("You put the call on hold."),
    RemoteHold: gettext("The call is on hold."),
    Disconnecting: gettext("Hanging up…"),
  }[state];
}

function showEnded(reason) {
  showState("ended", gettext("Call ended."), endReasonText(reason));
  showActions();
  setCallingEnabled(true);
}

function endReasonText(reason) {
  if (!reason) return "";
  const explanation = NETWORK_END_CODES.has(reason.code)
    ? gettext("The connection to the calling service was lost.")
    : END_REASONS[reason.code] || "";
  const codes = reason.subCode ? `${reason.code}/${reason.subCode}` : `${reason.code}`;
  const ended = interpolate(gettext("(End reason %(codes)s.)"), { codes }, true);
  return reason.code === 0 ? "" : `${explanation} ${ended}`.trim();
}

function endCall(call) {
  if (session.call === call) session.call = null;
  stopLocalPreview();
  ui.remoteVideo.replaceChildren();
  ui.inCall.hidden = true;
}

function pressed(button, on) {
  button.setAttribute("aria-pressed", String(Boolean(on)));
}

function syncControls(call) {
  pressed(ui.mute, call.isMuted);
  pressed(ui.video, call.isLocalVideoStarted);
  pressed(ui.share, call.isScreenSharingOn);
}

async function runControl(action, failure) {
  const call = session.call;
  if (!call) return;
  try {
    await action(call);
  } catch (error) {
    console.warn(failure, error);
    showState(ui.state.dataset.state, failure, error.message || "");
  }
}

function toggleMute() {
  return runControl((call) => (call.isMuted ? call.unmute() : call.mute()), gettext("Could not change the microphone."));
}

function toggleShare() {
  return runControl(
    (call) => (call.isScreenSharingOn ? call.stopScreenSharing() : call.startScreenSharing()),
    gettext("Could not change screen sharing."),
  );
}

function toggleVideo() {
  return runControl((call) => (session.localVideo ? stopVideo(call) : startVideo(call)), gettext("Could not change video."));
}

async function startVideo(call) {
  const camera = chosenDevice(ui.camera);
  if (!camera) throw new Error(gettext("No camera is available."));
  session.localVideo = new LocalVideoStream(camera);
  try {
    await call.startVideo(session.localVideo);
    session.localRenderer = new VideoStreamRenderer(session.localVideo);
    const view = await session.localRenderer.createView({ isMirrored: true });
    ui.localVideo.replaceChildren(view.target);
  } catch (error) {
    stopLocalPreview();
    throw error;
  }
}

async function stopVideo(call) {
  const stream = session.localVideo;
  stopLocalPreview();
  await call.stopVideo(stream);
}

function stopLocalPreview() {
  session.localRenderer?.dispose();
  session.localRenderer = null;
  session.localVideo = null;
  ui.localVideo.replaceChildren();
}

function hangUp() {
  return runControl((call) => call.hangUp(), gettext("Could not hang up."));
}

function watchParticipant(participant) {
  participant.on("videoStreamsUpdated", ({ added }) => added.forEach(watchRemoteStream));
  participant.videoStreams.forEach(watchRemoteStream);
}

function watchRemoteStream(stream) {
  let renderer = null;
  let target = null;
  const render = async () => {
    renderer?.dispose();
    target?.remove();
    renderer = target = null;
    if (!stream.isAvailable) return;
    renderer = new VideoStreamRenderer(stream);
    target = (await renderer.createView()).target;
    ui.remoteVideo.append(target);
  };
  const show = () => render().catch((error) => console.warn("Remote video failed", error));
  stream.on("isAvailableChanged", show);
  show();
}

// ---------------------------------------------------------------- wiring

function wire() {
  ui.retry.addEventListener("click", () => session.retryAction?.());
  ui.personSearch.addEventListener("input", onSearchInput);
  ui.personForm.addEventListener("submit", onPersonSubmit);
  ui.meetingForm.addEventListener("submit", onMeetingSubmit);
  ui.meetingLink.addEventListener("input", () => showFieldError(ui.meetingError, ui.meetingLink, ""));
  ui.mute.addEventListener("click", toggleMute);
  ui.video.addEventListener("click", toggleVideo);
  ui.share.addEventListener("click", toggleShare);
  ui.hangUp.addEventListener("click", hangUp);
  window.addEventListener("pagehide", () => session.call?.hangUp().catch(() => {}));
  window.addEventListener("unhandledrejection", quietSdkRejection);
  wireDevices();
}

// When the service is out of reach the calling SDK leaves some background requests' rejections
// unhandled (e.g. fetching Teams user policy). The page already reports the outcome through the
// call state, so these are logged as warnings instead of uncaught errors.
function quietSdkRejection(event) {
  if (event.reason?.name !== "CallingCommunicationError") return;
  event.preventDefault();
  console.warn("Calling SDK background task failed:", event.reason.message);
}

wire();
setUpDevices();
start();
